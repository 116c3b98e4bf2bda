package app.carepass

import com.sun.jna.Callback
import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.Structure
import org.junit.jupiter.api.Test
import org.w3c.dom.Element
import java.io.File
import java.lang.reflect.Modifier
import java.nio.file.Files
import java.nio.file.Path
import java.util.zip.ZipFile
import javax.xml.parsers.DocumentBuilderFactory
import kotlin.io.path.extension
import kotlin.io.path.invariantSeparatorsPathString
import kotlin.io.path.isDirectory
import kotlin.io.path.relativeTo
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * What the AAR ships besides code (JUnit 5, no Android classes needed): the consumer R8 rules
 * in `consumer-rules.pro` against the classes JNA reaches by reflection, and the library's
 * `AndroidManifest.xml`. R8 itself only runs in an app build with the SDK; this reads the rules
 * with [ProguardRules], which errs on the strict side.
 */
class AndroidPackagingTest {

    private val androidDir = File(System.getProperty("carepass.android.dir") ?: error("carepass.android.dir is not set"))
    private val bindingsSource = File(
        System.getProperty("carepass.bindings.dir") ?: error("carepass.bindings.dir is not set"),
        "app/carepass/ffi/carepass_ffi.kt",
    )
    private val rulesFile = File(androidDir, "carepass/consumer-rules.pro")
    private val rules = ProguardRules(rulesFile.readText())

    /** A class JNA reaches, loaded (not initialised) from the compiled bindings. */
    private class JnaClass(val name: String, val type: Class<*>) {
        val ancestors: Set<String> = buildSet {
            fun visit(c: Class<*>?) {
                if (c == null) return
                if (c !== type) add(c.name)
                visit(c.superclass)
                c.interfaces.forEach { visit(it) }
            }
            visit(type)
        }
    }

    private fun load(name: String): Class<*> = Class.forName(name, false, javaClass.classLoader)

    private fun isJnaType(c: Class<*>) =
        Structure::class.java.isAssignableFrom(c) || Callback::class.java.isAssignableFrom(c) || Library::class.java.isAssignableFrom(c)

    /**
     * The declarations of the generated bindings that JNA uses by reflection: Structure,
     * Callback and Library types (directly or through another of them), and the objects bound
     * to the native library with `Native.register` (direct mapping: their `external` functions
     * are found by name).
     */
    private fun jnaDeclarations(): List<KotlinDeclarations.Declaration> {
        val source = bindingsSource.readText()
        val declarations = KotlinDeclarations.parse(source)
        val roots = setOf(
            "Structure", "Structure.ByValue", "Structure.ByReference", "Callback", "Library",
        ).flatMap { listOf(it, "com.sun.jna.$it") }.toSet()
        val registered = Regex("Native\\.register\\(\\s*(\\w+)::class\\.java").findAll(KotlinDeclarations.blankCommentsAndStrings(source))
            .map { it.groupValues[1] }.toSet()
        val pkg = "app.carepass.ffi."
        fun sourceName(d: KotlinDeclarations.Declaration) = d.binaryName.removePrefix(pkg).replace('$', '.')
        val jna = declarations.filter { it.simpleName in registered && '$' !in it.binaryName }.toMutableSet()
        do {
            val names = jna.flatMap { listOf(sourceName(it), it.simpleName) }.toSet()
            val more = declarations.filter { d -> d !in jna && d.supertypes.any { it in roots || it in names } }
        } while (jna.addAll(more))
        return jna.sortedBy { it.binaryName }
    }

    /** Every class file of the package `app.carepass.ffi` in the compiled output that holds the bindings. */
    private fun compiledBindingClasses(): List<String> {
        val location = Path.of(load("app.carepass.ffi.RustBuffer").protectionDomain.codeSource.location.toURI())
        val names = mutableListOf<String>()
        if (location.isDirectory()) {
            Files.walk(location.resolve("app/carepass/ffi")).use { paths ->
                paths.filter { it.extension == "class" }.forEach {
                    names += it.relativeTo(location).invariantSeparatorsPathString.removeSuffix(".class").replace('/', '.')
                }
            }
        } else {
            ZipFile(location.toFile()).use { zip ->
                zip.entries().asSequence().map { it.name }
                    .filter { it.startsWith("app/carepass/ffi/") && it.endsWith(".class") }
                    .forEach { names += it.removeSuffix(".class").replace('/', '.') }
            }
        }
        return names.filter { it.count { c -> c == '.' } == 3 } // the package itself, not below it
    }

    @Test
    fun `every Structure, Callback, Library and direct-mapped class of the bindings is kept whole by consumer-rules pro`() {
        val declared = jnaDeclarations()
        assertTrue(declared.size > 40, "found ${declared.size} JNA declarations: the parse is broken")
        val kinds = declared.map { load(it.binaryName) }
        assertTrue(kinds.any { Structure::class.java.isAssignableFrom(it) } && kinds.any { Callback::class.java.isAssignableFrom(it) })
        assertTrue("app.carepass.ffi.UniffiLib" in declared.map { it.binaryName }, "the direct-mapped library object")

        // The parse is complete: every compiled JNA type of the package was declared in the source
        // (or is a compiler-made class inside one), and every declaration is a real class.
        val declaredNames = declared.map { it.binaryName }.toSet()
        for (d in declared) {
            val c = load(d.binaryName)
            val directMapped = c.declaredMethods.any { Modifier.isNative(it.modifiers) }
            assertTrue(isJnaType(c) || directMapped, "${d.binaryName} is no JNA type")
        }
        val compiled = compiledBindingClasses().map { load(it) }.filter { isJnaType(it) }
        assertTrue(compiled.size > 40, "found ${compiled.size} compiled JNA types")
        val missed = compiled.map { it.name }.filter { it !in declaredNames && declaredNames.none { d -> it.startsWith("$d\$") } }
        assertEquals(emptyList(), missed, "compiled JNA types the source parse did not find")

        // Each of them, and whatever the compiler made inside them, is kept with its members.
        val toKeep = (declaredNames + compiled.map { it.name }).map { JnaClass(it, load(it)) }
        val notKept = uncovered(rules, toKeep)
        assertEquals(emptyList(), notKept, "not kept whole by $rulesFile")
    }

    @Test
    fun `every class of JNA itself is kept whole, and the annotations JNA reads survive`() {
        val jar = File(Native::class.java.protectionDomain.codeSource.location.toURI())
        val jnaClasses = ZipFile(jar).use { zip ->
            zip.entries().asSequence().map { it.name }
                .filter { it.startsWith("com/sun/jna/") && it.endsWith(".class") && !it.endsWith("module-info.class") }
                .map { it.removeSuffix(".class").replace('/', '.') }.toList()
        }
        assertTrue(jnaClasses.size > 100, "${jnaClasses.size} classes in $jar")
        val notKept = jnaClasses.filter { !rules.keepsWhole(it, ancestorsByName(it), isInterface = load(it).isInterface) }
        assertEquals(emptyList(), notKept, "JNA classes not kept whole by $rulesFile")

        // Structure field order comes from @Structure.FieldOrder, read at run time.
        assertTrue(load("app.carepass.ffi.RustBuffer").isAnnotationPresent(Structure.FieldOrder::class.java))
        assertTrue(rules.keepsAttribute("RuntimeVisibleAnnotations"), "$rulesFile must keep RuntimeVisibleAnnotations")
    }

    @Test
    fun `the rules check fails when a rule is missing, too narrow or allows obfuscation`() {
        val text = rulesFile.readText()
        val bindingsRule = Regex("(?m)^-keep class app\\.carepass\\.ffi\\.\\*\\* \\{ \\*; \\}$")
        assertTrue(bindingsRule.containsMatchIn(text), "the bindings rule as this test expects it")
        val toKeep = jnaDeclarations().map { JnaClass(it.binaryName, load(it.binaryName)) }

        val without = ProguardRules(text.replace(bindingsRule, ""))
        val obfuscated = ProguardRules(text.replace(bindingsRule, "-keep,allowobfuscation class app.carepass.ffi.** { *; }"))
        val noMembers = ProguardRules(text.replace(bindingsRule, "-keep class app.carepass.ffi.**"))
        val publicOnly = ProguardRules(text.replace(bindingsRule, "-keep class app.carepass.ffi.** { public *; }"))
        for ((what, weaker) in listOf("without" to without, "allowobfuscation" to obfuscated, "no members" to noMembers, "public only" to publicOnly)) {
            val notKept = uncovered(weaker, toKeep)
            // The -keepclassmembers rule for JNA subclasses still keeps their public members, not the classes.
            assertTrue("app.carepass.ffi.RustBuffer" in notKept && "app.carepass.ffi.UniffiLib" in notKept, "$what: $notKept")
        }
        // One package level only: JNA's subpackages (ptr, internal…) are then not kept.
        val narrow = ProguardRules(text.replace("-keep class com.sun.jna.** { *; }", "-keep class com.sun.jna.* { *; }"))
        assertTrue(!narrow.keepsWhole("com.sun.jna.internal.Cleaner", emptySet(), isInterface = false))
        assertTrue(narrow.keepsWhole("com.sun.jna.Native", emptySet(), isInterface = false))
        assertTrue(!ProguardRules(text.replace(Regex("(?m)^-keepattributes.*$"), "")).keepsAttribute("RuntimeVisibleAnnotations"))
    }

    @Test
    fun `the library manifest asks for INTERNET only and leaves package and minSdk to the Gradle build`() {
        val manifestFile = File(androidDir, "carepass/src/main/AndroidManifest.xml")
        val manifest = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }
            .newDocumentBuilder().parse(manifestFile).documentElement
        val androidNs = "http://schemas.android.com/apk/res/android"
        assertEquals("manifest", manifest.tagName)
        assertEquals("", manifest.getAttribute("package"), "the package comes from `namespace` in build.gradle.kts")

        val children = (0 until manifest.childNodes.length).map { manifest.childNodes.item(it) }.filterIsInstance<Element>()
        val permissions = children.filter { it.tagName == "uses-permission" }.map { it.getAttributeNS(androidNs, "name") }
        assertEquals(listOf("android.permission.INTERNET"), permissions)
        assertEquals(listOf("uses-permission"), children.map { it.tagName }.distinct(), "no uses-sdk, application or components")

        val gradle = File(androidDir, "carepass/build.gradle.kts").readText()
        assertTrue(Regex("""namespace = "app\.carepass"""").containsMatchIn(gradle))
        assertEquals(listOf("24"), Regex("""minSdk = (\d+)""").findAll(gradle).map { it.groupValues[1] }.toList(), "minSdk, merged into the AAR's manifest")
        assertTrue("""consumerProguardFiles("consumer-rules.pro")""" in gradle, "the rules ship in the AAR")
    }

    private fun ancestorsByName(name: String): Set<String> = JnaClass(name, load(name)).ancestors

    private fun uncovered(rules: ProguardRules, classes: List<JnaClass>): List<String> =
        classes.filter { !rules.keepsWhole(it.name, it.ancestors, isInterface = it.type.isInterface, isEnum = it.type.isEnum) }
            .map { it.name }.sorted()

    init {
        if (!bindingsSource.isFile) fail("$bindingsSource does not exist")
    }
}
