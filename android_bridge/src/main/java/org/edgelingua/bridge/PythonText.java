package org.edgelingua.bridge;

/**
 * Python's notion of characters, for the ported text rules: {@code str.isspace},
 * {@code str.isalnum}, and {@code re}'s {@code \w \s \d} classes on {@code str} patterns, with a
 * translator from the subset of Python regular-expression syntax edge_lingua uses to
 * {@code java.util.regex}.
 *
 * <p>Python (3.11, Unicode 14) and Java 17 (Unicode 13) agree on these classes except for
 * characters added to Unicode after 13.0: {@code \w} is exactly the L and N categories plus
 * {@code _}, {@code \d} the Nd category, {@code \s} the characters of {@link #SPACE_CLASS}
 * (Unicode White_Space plus the information separators U+001C..U+001F). Java's own {@code \w}
 * and {@code \s} differ (ASCII only, or with UNICODE_CHARACTER_CLASS marks and no U+001C..F).
 */
final class PythonText {
    /** Body of a character class for Python's {@code \s} ({@code str.isspace}). */
    static final String SPACE_CLASS =
            "\\t\\n\\x{0B}\\f\\r\\x{1C}-\\x{1F} \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
            + "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
    /**
     * Body of a character class for Python's {@code \w}. It names U+20000 (a letter, so already in
     * {@code \p{L}}) literally: a lookbehind whose class holds a character outside the BMP steps
     * back by code points in java.util.regex; without it {@code (?<![\w])} looks only at the low
     * surrogate of a preceding rare letter or digit (measured on Java 17).
     */
    static final String WORD_CLASS = "\\p{L}\\p{N}_" + new String(Character.toChars(0x20000));

    private PythonText() {
    }

    /** Python {@code str.isspace} for one code point. */
    static boolean isSpace(int c) {
        return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0
                || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029
                || c == 0x202F || c == 0x205F || c == 0x3000;
    }

    /** Python {@code str.isalnum} for one code point: a letter or a number (L or N category). */
    static boolean isAlnum(int c) {
        switch (Character.getType(c)) {
            case Character.UPPERCASE_LETTER:
            case Character.LOWERCASE_LETTER:
            case Character.TITLECASE_LETTER:
            case Character.MODIFIER_LETTER:
            case Character.OTHER_LETTER:
            case Character.DECIMAL_DIGIT_NUMBER:
            case Character.LETTER_NUMBER:
            case Character.OTHER_NUMBER:
                return true;
            default:
                return false;
        }
    }

    /**
     * A Python {@code re} pattern in java.util.regex syntax: {@code \w \W \s \S \d \D} become
     * Python's Unicode classes, {@code (?P<name>} becomes {@code (?<name>}, and {@code [} inside a
     * character class is a literal as in Python. Covers the syntax edge_lingua's patterns use.
     */
    static String translate(String python) {
        StringBuilder out = new StringBuilder();
        boolean inClass = false;
        int classStart = -1;
        for (int i = 0; i < python.length(); i++) {
            char c = python.charAt(i);
            if (c == '\\' && i + 1 < python.length()) {
                char e = python.charAt(++i);
                out.append(escape(e, inClass));
                continue;
            }
            if (!inClass && python.startsWith("(?P<", i)) {
                out.append("(?<");
                i += 3;
            } else if (!inClass && c == '[') {
                inClass = true;
                out.append(c);
                if (i + 1 < python.length() && python.charAt(i + 1) == '^') {
                    out.append('^');
                    i++;
                }
                classStart = i + 1;
            } else if (inClass && c == ']' && i != classStart) {
                inClass = false;
                out.append(c);
            } else if (inClass && (c == '[' || c == ']' || c == '&')) {
                out.append('\\').append(c);
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    private static String escape(char e, boolean inClass) {
        switch (e) {
            case 'w': return inClass ? WORD_CLASS : "[" + WORD_CLASS + "]";
            case 'W': return outsideOnly(e, inClass, "[^" + WORD_CLASS + "]");
            case 's': return inClass ? SPACE_CLASS : "[" + SPACE_CLASS + "]";
            case 'S': return outsideOnly(e, inClass, "[^" + SPACE_CLASS + "]");
            case 'd': return "\\p{Nd}";
            case 'D': return outsideOnly(e, inClass, "\\P{Nd}");
            default: return "\\" + e;
        }
    }

    private static String outsideOnly(char e, boolean inClass, String replacement) {
        if (inClass) {
            throw new IllegalArgumentException("\\" + e + " inside a character class is not translated");
        }
        return replacement;
    }
}
