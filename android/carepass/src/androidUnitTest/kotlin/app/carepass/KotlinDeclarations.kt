package app.carepass

/**
 * The classes, interfaces and objects declared in a Kotlin source file, with their binary names
 * (`pkg.Outer$Inner`) and the supertypes their headers name: enough to find, in the uniffi
 * bindings, every declaration that JNA reaches by reflection. A reader for generated code, not
 * a Kotlin parser: it blanks comments and string literals, then follows braces.
 */
internal object KotlinDeclarations {

    /** A named class, interface or object. */
    data class Declaration(
        val binaryName: String,
        val simpleName: String,
        val kind: String,
        /** Supertypes as written, without constructor arguments or type arguments: `Structure`, `com.sun.jna.Callback`, `Structure.ByValue`. */
        val supertypes: List<String>,
    )

    fun parse(source: String): List<Declaration> {
        val code = blankCommentsAndStrings(source)
        val pkg = Regex("(?m)^\\s*package\\s+([\\w.]+)").find(code)?.groupValues?.get(1).orEmpty()
        // `companion object` may have no name: it is then `Companion`.
        val header = Regex("(companion[ \\t]+object)(?:[ \\t]+([A-Za-z_][A-Za-z0-9_]*))?|(class|interface|object)[ \\t]+`?([A-Za-z_][A-Za-z0-9_]*)`?")

        val result = mutableListOf<Declaration>()
        // Enclosing declarations: (binary name, brace depth of their body).
        val enclosing = ArrayDeque<Pair<String, Int>>()
        var depth = 0
        var pendingBody: String? = null
        var i = 0
        while (i < code.length) {
            val c = code[i]
            when {
                c == '{' -> {
                    depth++
                    pendingBody?.let { enclosing.addLast(it to depth) }
                    pendingBody = null
                    i++
                }
                c == '}' -> {
                    while (enclosing.isNotEmpty() && enclosing.last().second >= depth) enclosing.removeLast()
                    depth--
                    i++
                }
                c.isLetter() && (i == 0 || !code[i - 1].isLetterOrDigit() && code[i - 1] != '_' && code[i - 1] != '.') -> {
                    val m = header.matchAt(code, i)
                    if (m == null || isReference(code, i)) {
                        i = skipWord(code, i)
                        continue
                    }
                    val companion = m.groupValues[1].isNotEmpty()
                    val kind = if (companion) "object" else m.groupValues[3]
                    val name = if (companion) m.groupValues[2].ifEmpty { "Companion" } else m.groupValues[4]
                    val owner = enclosing.lastOrNull()?.first
                    val binary = if (owner == null) (if (pkg.isEmpty()) name else "$pkg.$name") else "$owner\$$name"
                    var j = m.range.last + 1
                    j = skipSpaces(code, j, newlines = false)
                    if (j < code.length && code[j] == '<') j = skipBalanced(code, j, '<', '>')
                    j = skipSpaces(code, j, newlines = false)
                    // Primary constructor: modifiers/annotations then (...) possibly over lines.
                    val ctor = Regex("\\G(?:(?:internal|private|protected|public)\\s+)?(?:@\\w+\\s+)*(?:constructor\\s*)?\\(").find(code, j)
                    if (ctor != null) j = skipBalanced(code, ctor.range.last, '(', ')')
                    j = skipSpaces(code, j, newlines = false)
                    val supertypes = mutableListOf<String>()
                    if (j < code.length && code[j] == ':') {
                        j++
                        val start = j
                        // Supertypes end at the body, or at the end of the line outside parentheses.
                        var parens = 0
                        while (j < code.length) {
                            val d = code[j]
                            if (d == '(' || d == '<') parens++
                            if (d == ')' || d == '>') parens--
                            if (parens == 0 && (d == '{' || d == '\n')) break
                            j++
                        }
                        supertypes += splitTopLevel(code.substring(start, j)).map { stripArguments(it) }.filter { it.isNotEmpty() }
                    }
                    result += Declaration(binary, name, kind, supertypes)
                    j = skipSpaces(code, j, newlines = true)
                    // A body follows, possibly after a where-clause on the same header: the next '{'.
                    if (j < code.length && code[j] == '{') pendingBody = binary
                    i = j
                }
                else -> i++
            }
        }
        return result
    }

    /** `Foo::class` and `val `object`` are no declarations. */
    private fun isReference(code: String, at: Int): Boolean {
        val before = code.substring(maxOf(0, at - 16), at)
        return before.endsWith("::") || Regex("\\b(val|var)\\s+$").containsMatchIn(before)
    }

    private fun skipWord(code: String, at: Int): Int {
        var i = at
        while (i < code.length && (code[i].isLetterOrDigit() || code[i] == '_')) i++
        return i
    }

    private fun skipSpaces(code: String, at: Int, newlines: Boolean): Int {
        var i = at
        while (i < code.length && (code[i] == ' ' || code[i] == '\t' || (newlines && (code[i] == '\n' || code[i] == '\r')))) i++
        return i
    }

    /** From [at] (the opening character), the index after its matching close. */
    private fun skipBalanced(code: String, at: Int, open: Char, close: Char): Int {
        var level = 0
        var i = at
        while (i < code.length) {
            if (code[i] == open) level++
            if (code[i] == close) {
                level--
                if (level == 0) return i + 1
            }
            i++
        }
        return i
    }

    private fun splitTopLevel(text: String): List<String> {
        val parts = mutableListOf<String>()
        var level = 0
        val current = StringBuilder()
        for (c in text) {
            if (c == '(' || c == '<') level++
            if (c == ')' || c == '>') level--
            if (c == ',' && level == 0) {
                parts += current.toString()
                current.clear()
            } else {
                current.append(c)
            }
        }
        parts += current.toString()
        return parts.map { it.trim() }
    }

    /** `Foo(a, b)` and `Foo<T>` → `Foo`; `Structure.ByValue` stays. */
    private fun stripArguments(type: String): String {
        val cut = type.indexOfFirst { it == '(' || it == '<' }
        return (if (cut >= 0) type.substring(0, cut) else type).trim().removeSurrounding("`")
    }

    /**
     * [source] with every comment and string literal (templates included) replaced by spaces,
     * newlines kept, so that braces, parentheses and words left are code.
     */
    fun blankCommentsAndStrings(source: String): String {
        val out = StringBuilder(source.length)
        // Each entry: the brace depth at which a `${` template returns to its string ('"' or 'R' for raw).
        val templates = ArrayDeque<Pair<Char, Int>>()
        var depth = 0
        var i = 0
        fun blank(c: Char) = out.append(if (c == '\n') '\n' else ' ')

        // Scans a string body from i (after the opening quote); stops after the closing quote
        // or at a `${`, returning true when it entered a template.
        fun stringBody(raw: Boolean): Boolean {
            while (i < source.length) {
                if (raw && source.startsWith("\"\"\"", i)) {
                    // A raw string may end with extra quotes: """a""""
                    var end = i + 3
                    while (end < source.length && source[end] == '"') end++
                    repeat(end - i) { out.append(' ') }
                    i = end
                    return false
                }
                val c = source[i]
                if (!raw && c == '\\' && i + 1 < source.length) {
                    out.append("  ")
                    i += 2
                    continue
                }
                if (!raw && c == '"') {
                    out.append(' ')
                    i++
                    return false
                }
                if (c == '$' && i + 1 < source.length && source[i + 1] == '{') {
                    out.append("  ")
                    i += 2
                    templates.addLast((if (raw) 'R' else '"') to depth)
                    return true
                }
                blank(c)
                i++
            }
            return false
        }

        while (i < source.length) {
            val c = source[i]
            when {
                source.startsWith("//", i) -> {
                    while (i < source.length && source[i] != '\n') { out.append(' '); i++ }
                }
                source.startsWith("/*", i) -> {
                    var level = 0
                    while (i < source.length) {
                        if (source.startsWith("/*", i)) { level++; out.append("  "); i += 2; continue }
                        if (source.startsWith("*/", i)) { level--; out.append("  "); i += 2; if (level == 0) break; continue }
                        blank(source[i]); i++
                    }
                }
                source.startsWith("\"\"\"", i) -> {
                    out.append("   ")
                    i += 3
                    stringBody(raw = true)
                }
                c == '"' -> {
                    out.append(' ')
                    i++
                    stringBody(raw = false)
                }
                c == '\'' -> {
                    // A character literal: 'x', '\n', '\u0000'.
                    val end = source.indexOf('\'', i + if (source.getOrNull(i + 1) == '\\') 3 else 2)
                    val stop = if (end < 0) i + 1 else end + 1
                    while (i < stop) { blank(source[i]); i++ }
                }
                c == '{' -> { depth++; out.append(c); i++ }
                c == '}' -> {
                    val template = templates.lastOrNull()
                    if (template != null && template.second == depth) {
                        templates.removeLast()
                        out.append(' ')
                        i++
                        stringBody(raw = template.first == 'R')
                    } else {
                        depth--
                        out.append(c)
                        i++
                    }
                }
                else -> { out.append(c); i++ }
            }
        }
        return out.toString()
    }
}
