package app.carepass

/**
 * The part of the ProGuard/R8 rule language that decides whether a class survives shrinking
 * and obfuscation whole: `-keep`, `-keepclassmembers` and `-keepattributes`, with class name
 * patterns (`?`, `*`, `**`, `!` and comma lists), class types (`class`, `interface`, `enum`,
 * with `!`) and `extends`/`implements`. Rules this reader does not understand keep nothing, so
 * a check built on it can only be stricter than R8.
 */
internal class ProguardRules(text: String) {

    /** One `-keep…` option. */
    private class KeepRule(
        val option: String,
        /** `allowshrinking`, `allowobfuscation`…: with any of these the rule does not keep a class whole. */
        val modifiers: Set<String>,
        /** `class`, `interface`, `enum`, `@interface`, possibly with a leading `!`. */
        val classType: String,
        val names: List<Pair<Boolean, Regex>>,
        val inheritance: Regex?,
        /** The member specifications between the braces, e.g. `*`, `public *`, `<fields>`. */
        val members: List<String>,
    ) {
        val keepsClass get() = option == "keep" && modifiers.isEmpty()
        val keepsAllMembers get() = option in setOf("keep", "keepclassmembers") && modifiers.isEmpty() && "*" in members

        fun matches(className: String, ancestors: Collection<String>, isInterface: Boolean, isEnum: Boolean): Boolean {
            val typeOk = when (classType) {
                "class" -> true
                "interface" -> isInterface
                "!interface" -> !isInterface
                "enum" -> isEnum
                "!enum" -> !isEnum
                else -> false
            }
            if (!typeOk) return false
            if (inheritance != null) {
                // `extends X`: a subclass of X, directly or not; the class name patterns still apply.
                if (ancestors.none { inheritance.matches(it) }) return false
            }
            return matchesNames(className)
        }

        private fun matchesNames(className: String): Boolean {
            for ((negated, pattern) in names) {
                if (pattern.matches(className)) return !negated
            }
            return false
        }
    }

    private val keepRules = mutableListOf<KeepRule>()
    private val keptAttributes = mutableListOf<Regex>()

    init {
        val uncommented = text.lines().joinToString("\n") { it.substringBefore('#') }
        // Every option starts with '-' at the start of a line; member blocks continue it.
        val options = uncommented.split(Regex("(?m)^\\s*(?=-)")).map { it.trim() }.filter { it.startsWith("-") }
        for (option in options) {
            val head = Regex("^-([a-z]+)((?:,[a-z]+)*)\\s*(.*)$", RegexOption.DOT_MATCHES_ALL).find(option) ?: continue
            val (name, mods, rest) = head.destructured
            when (name) {
                "keep", "keepclassmembers" -> parseKeep(name, mods, rest)?.let { keepRules += it }
                "keepattributes" -> rest.split(',').map { it.trim() }.filter { it.isNotEmpty() }
                    .forEach { keptAttributes += globToRegex(it, dotIsSeparator = false) }
            }
        }
    }

    private fun parseKeep(option: String, mods: String, spec: String): KeepRule? {
        val match = Regex(
            "^(?:@\\S+\\s+)?(?:!?(?:public|private|protected|final|abstract|static|synthetic)\\s+)*" +
                "(!?(?:class|interface|enum|@interface))\\s+([^{]+?)" +
                "(?:\\s+(?:extends|implements)\\s+(?:@\\S+\\s+)?(\\S+))?\\s*(?:\\{(.*)\\})?\\s*$",
            RegexOption.DOT_MATCHES_ALL,
        ).find(spec) ?: return null
        val (classType, namesText, superName, membersText) = match.destructured
        val names = namesText.split(',').map { it.trim() }.filter { it.isNotEmpty() }.map { pattern ->
            val negated = pattern.startsWith("!")
            negated to globToRegex(pattern.removePrefix("!"), dotIsSeparator = true)
        }
        return KeepRule(
            option = option,
            modifiers = mods.split(',').filter { it.isNotEmpty() }.toSet(),
            classType = classType,
            names = names,
            inheritance = superName.takeIf { it.isNotEmpty() }?.let { globToRegex(it, dotIsSeparator = true) },
            members = membersText.split(';').map { it.trim().replace(Regex("\\s+"), " ") }.filter { it.isNotEmpty() },
        )
    }

    /**
     * Whether the class named [className] (binary name: `a.b.Outer$Inner`) is kept with its name
     * and all its members: some `-keep` rule keeps the class, and some `-keep` or
     * `-keepclassmembers` rule keeps all of its members (`*;`), neither with an `allow…` modifier.
     *
     * @param ancestors the binary names of all its superclasses and interfaces, direct or not.
     */
    fun keepsWhole(className: String, ancestors: Collection<String>, isInterface: Boolean, isEnum: Boolean = false): Boolean {
        val matching = keepRules.filter { it.matches(className, ancestors, isInterface, isEnum) }
        return matching.any { it.keepsClass } && matching.any { it.keepsAllMembers }
    }

    /** Whether `-keepattributes` keeps the class file attribute [name] (e.g. `RuntimeVisibleAnnotations`). */
    fun keepsAttribute(name: String): Boolean = keptAttributes.any { it.matches(name) }

    private companion object {
        /** ProGuard's wildcards: `?` one character, `*` any run, `**` any run across '.' too. */
        fun globToRegex(glob: String, dotIsSeparator: Boolean): Regex {
            val one = if (dotIsSeparator) "[^.]" else "."
            val out = StringBuilder()
            var i = 0
            while (i < glob.length) {
                val c = glob[i]
                when {
                    glob.startsWith("**", i) -> { out.append(".*"); i += 2; continue }
                    c == '*' -> out.append("$one*")
                    c == '?' -> out.append(one)
                    else -> out.append(Regex.escape(c.toString()))
                }
                i++
            }
            return Regex(out.toString())
        }
    }
}
