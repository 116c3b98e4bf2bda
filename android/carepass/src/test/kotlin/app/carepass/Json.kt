package app.carepass

/**
 * Just enough JSON for the tests (org.json is not on the classpath): [parse] gives
 * `Map<String, Any?>`, `List<Any?>`, `String`, `Long` (integers), `Double`, `Boolean` or
 * `null`; [quote] writes a string literal, [write] any value [parse] gives back as JSON.
 */
internal object Json {

    /** [value] (as [parse] gives it) as compact JSON text. */
    fun write(value: Any?): String = buildString { write(value, this) }

    private fun write(value: Any?, out: StringBuilder) {
        when (value) {
            null -> out.append("null")
            is String -> out.append(quote(value))
            is Long, is Int, is Boolean -> out.append(value.toString())
            is Double -> {
                check(value.isFinite()) { "JSON has no $value" }
                out.append(value.toString())
            }
            is Map<*, *> -> {
                out.append('{')
                value.entries.forEachIndexed { i, (k, v) ->
                    if (i > 0) out.append(',')
                    out.append(quote(k as String)).append(':')
                    write(v, out)
                }
                out.append('}')
            }
            is List<*> -> {
                out.append('[')
                value.forEachIndexed { i, v ->
                    if (i > 0) out.append(',')
                    write(v, out)
                }
                out.append(']')
            }
            else -> error("not a JSON value: ${value::class}")
        }
    }

    fun parse(text: String): Any? = Parser(text).run {
        val value = value()
        skipSpace()
        check(pos == text.length) { "trailing characters at $pos" }
        value
    }

    @Suppress("UNCHECKED_CAST")
    fun parseObject(text: String): Map<String, Any?> =
        parse(text) as? Map<String, Any?> ?: error("not a JSON object: $text")

    fun quote(value: String): String = buildString {
        append('"')
        for (c in value) {
            when {
                c == '"' -> append("\\\"")
                c == '\\' -> append("\\\\")
                c < ' ' -> append("\\u%04x".format(c.code))
                else -> append(c)
            }
        }
        append('"')
    }

    private class Parser(private val s: String) {
        var pos = 0

        fun skipSpace() {
            while (pos < s.length && s[pos].isWhitespace()) pos++
        }

        private fun fail(what: String): Nothing = error("JSON: $what at $pos")

        private fun expect(c: Char) {
            skipSpace()
            if (pos >= s.length || s[pos] != c) fail("expected '$c'")
            pos++
        }

        fun value(): Any? {
            skipSpace()
            if (pos >= s.length) fail("unexpected end")
            return when (s[pos]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> number()
            }
        }

        private fun literal(word: String, value: Any?): Any? {
            if (!s.startsWith(word, pos)) fail("unknown literal")
            pos += word.length
            return value
        }

        private fun obj(): Map<String, Any?> {
            expect('{')
            val map = LinkedHashMap<String, Any?>()
            skipSpace()
            if (s.getOrNull(pos) == '}') return map.also { pos++ }
            while (true) {
                skipSpace()
                val key = string()
                expect(':')
                map[key] = value()
                skipSpace()
                when (s.getOrNull(pos++)) {
                    ',' -> continue
                    '}' -> return map
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        private fun array(): List<Any?> {
            expect('[')
            val list = ArrayList<Any?>()
            skipSpace()
            if (s.getOrNull(pos) == ']') return list.also { pos++ }
            while (true) {
                list += value()
                skipSpace()
                when (s.getOrNull(pos++)) {
                    ',' -> continue
                    ']' -> return list
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        private fun string(): String {
            if (s.getOrNull(pos) != '"') fail("expected a string")
            pos++
            val out = StringBuilder()
            while (true) {
                if (pos >= s.length) fail("unterminated string")
                when (val c = s[pos++]) {
                    '"' -> return out.toString()
                    '\\' -> {
                        if (pos >= s.length) fail("unterminated escape")
                        when (val e = s[pos++]) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> {
                                if (pos + 4 > s.length) fail("short \\u escape")
                                out.append(s.substring(pos, pos + 4).toInt(16).toChar())
                                pos += 4
                            }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        private fun number(): Any {
            val start = pos
            while (pos < s.length && (s[pos].isDigit() || s[pos] in "+-.eE")) pos++
            val text = s.substring(start, pos)
            if (text.isEmpty()) fail("unexpected character '${s[start]}'")
            return text.toLongOrNull() ?: text.toDoubleOrNull() ?: fail("bad number '$text'")
        }
    }
}

/** Lowercase hex to bytes. */
internal fun String.hexToBytes(): ByteArray {
    require(length % 2 == 0) { "odd-length hex" }
    return ByteArray(length / 2) { i -> substring(2 * i, 2 * i + 2).toInt(16).toByte() }
}
