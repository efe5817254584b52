package org.edgelingua.bridge;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The units of one text (edge_lingua.segmentation.split_units): what selection keeps or drops
 * whole. An atom ({@link Atoms}); a word (letters, digits and combining marks, with inner
 * apostrophes); a CJK phrase; or any other single non-space character with its marks and
 * zero-width-joined sequence.
 *
 * <p>{@code start/end} are UTF-16 indices into {@link #text}; {@code cpStart/cpEnd} the same
 * spans in code points (Python's indices). Only the whole text is one region: the Python
 * structure modes (JSON, markdown, code, chat, LLMLingua tags) are not ported.
 */
public final class Units {
    public static final String WORD = "word";
    public static final String CJK = "cjk";
    public static final String SYMBOL = "symbol";
    static final int MAX_CJK_UNIT = 4;

    /** Python's _CJK_CLASS. */
    static final String CJK_CLASS = "\\x{3005}\\x{3040}-\\x{30FF}\\x{31F0}-\\x{31FF}\\x{3400}-\\x{4DBF}"
            + "\\x{4E00}-\\x{9FFF}\\x{F900}-\\x{FAFF}\\x{FF66}-\\x{FF9F}\\x{20000}-\\x{2FA1F}";
    /** Combining marks, joiners (continue the unit before them). */
    private static final String MARKS = "\\p{M}\\x{200C}\\x{200D}";
    private static final String WORD_CHAR = "(?:[" + PythonText.WORD_CLASS + "&&[^" + CJK_CLASS + "]]|["
            + MARKS + "])";
    private static final String NON_SPACE = "[^" + PythonText.SPACE_CLASS + "]";
    private static final Pattern UNIT = Pattern.compile(
            "(?<word>" + WORD_CHAR + "+(?:['\u2019]" + WORD_CHAR + "+)*)"
            + "|(?<cjk>[" + CJK_CLASS + "][" + CJK_CLASS + MARKS + "]*)"
            + "|(?<symbol>" + NON_SPACE + "(?:\\x{200D}" + NON_SPACE + "|[" + MARKS + "])*)");
    /** Chinese characters that end a phrase: particles, copulas, prepositions, conjunctions. */
    private static final String ZH_PHRASE_END =
            "\u7684\u4e86\u662f\u5728\u548c\u4e0e\u53ca\u6216\u4e5f\u90fd\u5c31\u800c\u4e4b\u4e8e\u4e3a"
            + "\u628a\u88ab\u4ece\u5bf9\u5411\u4ee5\u5c06\u7531\u5e76\u4f46\u53c8\u8fd8\u5f88\u6240\u5176"
            + "\u8be5\u8fd9\u90a3\u4e2a\u4eec\u5730\u5f97\u7740\u8fc7";

    public final String text;
    public final int[] start;
    public final int[] end;
    public final int[] cpStart;
    public final int[] cpEnd;
    public final List<String> kinds;
    public final boolean[] isProtected;

    private Units(String text, List<int[]> spans, List<String> kinds, List<Boolean> isProtected) {
        int n = spans.size();
        this.text = text;
        this.start = new int[n];
        this.end = new int[n];
        this.cpStart = new int[n];
        this.cpEnd = new int[n];
        this.isProtected = new boolean[n];
        int[] codePointAt = new int[text.length() + 1]; // UTF-16 index -> code point index
        for (int i = 0; i < text.length(); i++) {
            boolean pairEnd = i > 0 && Character.isHighSurrogate(text.charAt(i - 1))
                    && Character.isLowSurrogate(text.charAt(i));
            codePointAt[i + 1] = codePointAt[i] + (pairEnd ? 0 : 1);
        }
        for (int u = 0; u < n; u++) {
            start[u] = spans.get(u)[0];
            end[u] = spans.get(u)[1];
            cpStart[u] = codePointAt[start[u]];
            cpEnd[u] = codePointAt[end[u]];
            this.isProtected[u] = isProtected.get(u);
        }
        this.kinds = List.copyOf(kinds);
    }

    /** Cut {@code text} into units; atoms in {@code protection}'s categories or patterns are protected. */
    public static Units split(String text, Atoms.Protection protection) {
        List<int[]> spans = new ArrayList<>();
        List<String> kinds = new ArrayList<>();
        List<Boolean> prot = new ArrayList<>();
        List<Atoms.Atom> atoms = new ArrayList<>(Atoms.findAtoms(text, protection.patterns));
        atoms.add(null);
        int position = 0;
        Matcher m = UNIT.matcher(text);
        for (Atoms.Atom atom : atoms) {
            int gapEnd = atom == null ? text.length() : atom.start;
            if (gapEnd > position) {
                m.region(position, gapEnd);
                while (m.find()) {
                    if (m.start("cjk") >= 0) {
                        int[] cuts = cjkPhrases(m.group());
                        for (int k = 0; k + 1 < cuts.length; k++) {
                            add(spans, kinds, prot, m.start() + cuts[k], m.start() + cuts[k + 1], CJK, false);
                        }
                    } else {
                        add(spans, kinds, prot, m.start(), m.end(), m.start("word") >= 0 ? WORD : SYMBOL, false);
                    }
                }
            }
            if (atom == null) {
                break;
            }
            boolean isProt = atom.category.equals("custom") || protection.covers(atom.category);
            add(spans, kinds, prot, atom.start, atom.end, atom.category, isProt);
            position = atom.end;
        }
        if (text.indexOf('\\') >= 0) {
            glueEscapes(text, spans, kinds, prot);
        }
        return new Units(text, spans, kinds, prot);
    }

    /** A backslash escape as JSON, Python and C write it (Python's segmentation._ESCAPE). */
    private static final Pattern ESCAPE =
            Pattern.compile("\\\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)", Pattern.DOTALL);

    /**
     * Python's _glue_escapes: adjacent units that an escape such as \n or \u00e9 runs across are
     * merged, so that no escape is cut in two.
     */
    private static void glueEscapes(String text, List<int[]> spans, List<String> kinds, List<Boolean> prot) {
        List<int[]> escapes = new ArrayList<>();
        Matcher matcher = ESCAPE.matcher(text);
        while (matcher.find()) {
            escapes.add(new int[] {matcher.start(), matcher.end()});
        }
        int index = 0;
        int escape = 0;
        while (index + 1 < spans.size()) {
            int[] here = spans.get(index);
            int[] next = spans.get(index + 1);
            while (escape < escapes.size() && escapes.get(escape)[1] <= here[1]) {
                escape++;
            }
            boolean crossing = escape < escapes.size() && escapes.get(escape)[0] < here[1];
            if (crossing && next[0] == here[1]) {
                spans.set(index, new int[] {here[0], next[1]});
                if (kinds.get(index).equals(SYMBOL)) {
                    kinds.set(index, kinds.get(index + 1));
                }
                prot.set(index, prot.get(index) || prot.get(index + 1));
                spans.remove(index + 1);
                kinds.remove(index + 1);
                prot.remove(index + 1);
            } else {
                index++;
            }
        }
    }

    private static void add(List<int[]> spans, List<String> kinds, List<Boolean> prot, int start, int end,
            String kind, boolean isProtected) {
        spans.add(new int[] {start, end});
        kinds.add(kind);
        prot.add(isProtected);
    }

    public int size() {
        return start.length;
    }

    public String unit(int index) {
        return text.substring(start[index], end[index]);
    }

    public List<String> texts() {
        List<String> out = new ArrayList<>(size());
        for (int u = 0; u < size(); u++) {
            out.add(unit(u));
        }
        return out;
    }

    /**
     * Phrases of one run of CJK characters (Python's _cjk_phrases), as UTF-16 cut offsets into the
     * run: Chinese runs end a phrase after a function character or at four characters; Japanese
     * runs (any kana) start one where the script changes into kanji or katakana.
     */
    static int[] cjkPhrases(String run) {
        int[] cps = run.codePoints().toArray();
        boolean japanese = false;
        for (int c : cps) {
            japanese |= isKana(c);
        }
        List<Integer> cuts = new ArrayList<>();
        cuts.add(0);
        for (int i = 1; i < cps.length; i++) {
            String previous = script(cps[i - 1]);
            String current = script(cps[i]);
            if (current.equals("other")) { // a mark or a repetition sign stays with what it follows
                continue;
            }
            int last = cuts.get(cuts.size() - 1);
            boolean cut;
            if (japanese) {
                cut = (current.equals("han") || current.equals("katakana")) && !current.equals(previous)
                        || previous.equals("han") && current.equals("han") && i - last >= MAX_CJK_UNIT;
            } else {
                cut = isZhPhraseEnd(cps[i - 1])
                        || i - last >= MAX_CJK_UNIT && !isZhPhraseEnd(cps[i]);
            }
            if (cut) {
                cuts.add(i);
            }
        }
        cuts.add(cps.length);
        int[] utf16 = new int[cuts.size()];
        int offset = 0;
        int cp = 0;
        for (int k = 0; k < utf16.length; k++) {
            for (; cp < cuts.get(k); cp++) {
                offset += Character.charCount(cps[cp]);
            }
            utf16[k] = offset;
        }
        return utf16;
    }

    /** Python's _is_cjk: one code point in the CJK class (kana or han). */
    static boolean isCjk(int c) {
        return isKana(c) || isHan(c);
    }

    private static boolean isZhPhraseEnd(int c) {
        return c < 0x10000 && ZH_PHRASE_END.indexOf(c) >= 0;
    }

    private static boolean isKana(int c) {
        return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9F);
    }

    private static boolean isHan(int c) {
        return c == 0x3005 || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF)
                || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FA1F);
    }

    private static String script(int c) {
        if (isKana(c)) {
            return c >= 0x3040 && c <= 0x309F ? "hiragana" : "katakana";
        }
        return isHan(c) ? "han" : "other";
    }
}
