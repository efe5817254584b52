package org.edgelingua.bridge;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * BERT WordPiece tokenization, identical to Hugging Face {@code tokenizers} for a
 * {@code tokenizer.json} with a BertNormalizer, the BertPreTokenizer and a WordPiece model
 * (BERT, MiniLM, DistilBERT uncased/cased), or for a BERT {@code vocab.txt}.
 *
 * <p>Pipeline, as in the Rust crate: special (added) tokens are cut out of the raw text first;
 * the rest is normalized character by character (clean text: drop NUL, U+FFFD and control/format/
 * unassigned/private-use characters, map white space to ' '; space out CJK ideographs; strip
 * accents by NFD minus non-spacing marks; lowercase), split on white space and around every
 * punctuation character, and each word is cut greedily into the longest vocabulary pieces
 * ({@code ##} continuation prefix); a word with no complete cut, or longer than
 * max_input_chars_per_word, becomes one unknown token. Every normalized character remembers the
 * original character it came from, which gives each token its offsets in the input.
 */
public final class WordPieceTokenizer {
    private final Map<String, Integer> vocab;
    private final int unkId;
    private final String prefix;
    private final int maxInputChars;
    private final boolean cleanText;
    private final boolean handleChineseChars;
    private final boolean stripAccents;
    private final boolean lowercase;
    /** Special tokens matched on the raw text, longest first. */
    private final String[] added;
    private final int[] addedIds;

    private WordPieceTokenizer(Map<String, Integer> vocab, String unkToken, String prefix,
            int maxInputChars, boolean cleanText, boolean handleChineseChars, boolean stripAccents,
            boolean lowercase, Map<String, Integer> addedTokens) {
        Integer unk = vocab.get(unkToken);
        if (unk == null) {
            throw new BundleException("the unknown token " + unkToken + " is not in the vocabulary");
        }
        this.vocab = vocab;
        this.unkId = unk;
        this.prefix = prefix;
        this.maxInputChars = maxInputChars;
        this.cleanText = cleanText;
        this.handleChineseChars = handleChineseChars;
        this.stripAccents = stripAccents;
        this.lowercase = lowercase;
        this.added = addedTokens.keySet().stream()
                .sorted((a, b) -> b.length() != a.length() ? b.length() - a.length() : a.compareTo(b))
                .toArray(String[]::new);
        this.addedIds = Arrays.stream(added).mapToInt(addedTokens::get).toArray();
    }

    /** A tokenizer from the text of a Hugging Face {@code tokenizer.json}. */
    public static WordPieceTokenizer fromTokenizerJson(String json) {
        Map<String, Object> root = Json.parseObject(json);
        Map<String, Object> model = object(root.get("model"), "model");
        if (!"WordPiece".equals(model.get("type"))) {
            throw new BundleException("tokenizer model " + model.get("type")
                    + " is not supported: the bridge implements WordPiece (BERT family)");
        }
        Map<String, Integer> vocab = new HashMap<>();
        for (Map.Entry<String, Object> e : object(model.get("vocab"), "model.vocab").entrySet()) {
            vocab.put(e.getKey(), ((Number) e.getValue()).intValue());
        }
        Object preTokenizer = root.get("pre_tokenizer");
        if (!(preTokenizer instanceof Map)
                || !"BertPreTokenizer".equals(((Map<?, ?>) preTokenizer).get("type"))) {
            throw new BundleException("only the BertPreTokenizer is supported, not " + preTokenizer);
        }
        boolean clean = false;
        boolean chinese = false;
        boolean lower = false;
        boolean strip = false;
        Object normalizer = root.get("normalizer");
        if (normalizer != null) {
            Map<String, Object> norm = object(normalizer, "normalizer");
            if (!"BertNormalizer".equals(norm.get("type"))) {
                throw new BundleException("only the BertNormalizer is supported, not " + norm.get("type"));
            }
            clean = Boolean.TRUE.equals(norm.get("clean_text"));
            chinese = Boolean.TRUE.equals(norm.get("handle_chinese_chars"));
            lower = Boolean.TRUE.equals(norm.get("lowercase"));
            Object accents = norm.get("strip_accents");
            strip = accents == null ? lower : Boolean.TRUE.equals(accents); // None follows lowercase
        }
        Map<String, Integer> addedTokens = new HashMap<>();
        Object list = root.get("added_tokens");
        if (list instanceof List) {
            for (Object item : (List<?>) list) {
                Map<String, Object> token = object(item, "added_tokens[]");
                boolean plain = !Boolean.TRUE.equals(token.get("normalized"))
                        && !Boolean.TRUE.equals(token.get("lstrip"))
                        && !Boolean.TRUE.equals(token.get("rstrip"))
                        && !Boolean.TRUE.equals(token.get("single_word"));
                if (!plain) {
                    throw new BundleException("added token " + token.get("content")
                            + " uses normalized/lstrip/rstrip/single_word, which the bridge does not support");
                }
                addedTokens.put((String) token.get("content"), ((Number) token.get("id")).intValue());
            }
        }
        Object prefix = model.get("continuing_subword_prefix");
        Object maxChars = model.get("max_input_chars_per_word");
        return new WordPieceTokenizer(vocab, (String) model.get("unk_token"),
                prefix == null ? "##" : (String) prefix,
                maxChars == null ? 100 : ((Number) maxChars).intValue(),
                clean, chinese, strip, lower, addedTokens);
    }

    /**
     * A tokenizer from a BERT {@code vocab.txt} (one piece a line, id = line number), set up as
     * {@code BertTokenizerFast} does: clean text, CJK spacing, accents stripped when lowercasing,
     * and [PAD] [UNK] [CLS] [SEP] [MASK] as special tokens.
     */
    public static WordPieceTokenizer fromVocabTxt(String vocabTxt, boolean lowercase) {
        Map<String, Integer> vocab = new HashMap<>();
        String[] lines = vocabTxt.split("\n", -1);
        int count = lines.length > 0 && lines[lines.length - 1].isEmpty() ? lines.length - 1 : lines.length;
        for (int i = 0; i < count; i++) {
            String piece = lines[i].endsWith("\r") ? lines[i].substring(0, lines[i].length() - 1) : lines[i];
            vocab.putIfAbsent(piece, i);
        }
        Map<String, Integer> specials = new HashMap<>();
        for (String s : new String[] {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
            if (vocab.containsKey(s)) {
                specials.put(s, vocab.get(s));
            }
        }
        return new WordPieceTokenizer(vocab, "[UNK]", "##", 100, true, true, lowercase, lowercase,
                specials);
    }

    /** Id of a vocabulary piece, or -1. */
    public int tokenId(String piece) {
        Integer id = vocab.get(piece);
        return id == null ? -1 : id;
    }

    /**
     * Id of the unknown token as the Python runtime finds it ({@code [UNK]}, {@code <unk>} or
     * {@code <UNK>} in the vocabulary), or -1.
     */
    public int unknownTokenId() {
        for (String name : new String[] {"[UNK]", "<unk>", "<UNK>"}) {
            int id = tokenId(name);
            if (id < 0) {
                int added = Arrays.asList(this.added).indexOf(name);
                id = added < 0 ? -1 : addedIds[added];
            }
            if (id >= 0) {
                return id;
            }
        }
        return -1;
    }

    /** Number of tokens of {@code text} (no special tokens added). */
    public int count(String text) {
        return encode(text).size();
    }

    /** Tokenize {@code text} without adding special tokens (Python: add_special_tokens=False). */
    public Encoding encode(String text) {
        int n = text.codePointCount(0, text.length());
        int[] cps = new int[n];
        int[] charIndex = new int[n + 1];
        for (int i = 0, c = 0; i < n; i++) {
            charIndex[i] = c;
            cps[i] = text.codePointAt(c);
            c += Character.charCount(cps[i]);
        }
        charIndex[n] = text.length();
        Builder out = new Builder();
        int pos = 0;
        while (pos < n) {
            int at = pos;
            int which = -1;
            for (; at < n && which < 0; at++) {
                which = addedAt(text, charIndex[at]);
            }
            int end = which < 0 ? n : at - 1;
            tokenizeSpan(cps, pos, end, out);
            if (which < 0) {
                break;
            }
            int len = added[which].codePointCount(0, added[which].length());
            out.add(addedIds[which], out.nextWord++, end, end + len);
            pos = end + len;
        }
        return out.build(charIndex);
    }

    private int addedAt(String text, int charPos) {
        for (int k = 0; k < added.length; k++) {
            if (text.startsWith(added[k], charPos)) {
                return k;
            }
        }
        return -1;
    }

    /** Normalize, pre-tokenize and WordPiece the original code points [from, to). */
    private void tokenizeSpan(int[] cps, int from, int to, Builder out) {
        IntList norm = new IntList();
        IntList align = new IntList();
        for (int i = from; i < to; i++) {
            normalizeInto(cps[i], i, norm, align);
        }
        int wordStart = -1;
        for (int i = 0; i <= norm.size; i++) {
            int c = i < norm.size ? norm.data[i] : ' ';
            boolean space = Unicode.isWhiteSpace(c);
            boolean punct = !space && Unicode.isBertPunctuation(c);
            if (space || punct) {
                if (wordStart >= 0) {
                    wordPiece(norm, align, wordStart, i, out);
                    wordStart = -1;
                }
                if (punct) {
                    wordPiece(norm, align, i, i + 1, out);
                }
            } else if (wordStart < 0) {
                wordStart = i;
            }
        }
    }

    private void normalizeInto(int cp, int origin, IntList norm, IntList align) {
        if (cleanText) {
            if (cp == 0 || cp == 0xFFFD || Unicode.isControl(cp)) {
                return;
            }
            if (Unicode.isWhiteSpace(cp)) {
                cp = ' ';
            }
        }
        if (handleChineseChars && Unicode.isChinese(cp)) {
            norm.add(' ');
            align.add(origin);
            appendAccentsAndCase(cp, origin, norm, align);
            norm.add(' ');
            align.add(origin);
            return;
        }
        appendAccentsAndCase(cp, origin, norm, align);
    }

    private void appendAccentsAndCase(int cp, int origin, IntList norm, IntList align) {
        int[] chars = {cp};
        if (stripAccents && cp >= 0xC0) {
            chars = Normalizer.normalize(new String(chars, 0, 1), Normalizer.Form.NFD).codePoints()
                    .filter(c -> Character.getType(c) != Character.NON_SPACING_MARK).toArray();
        }
        for (int c : chars) {
            if (!lowercase) {
                norm.add(c);
                align.add(origin);
            } else if (c < 0x80) {
                norm.add(c >= 'A' && c <= 'Z' ? c + 32 : c);
                align.add(origin);
            } else {
                // Rust's char::to_lowercase: full (multi-character) mapping, no context rules
                new String(Character.toChars(c)).toLowerCase(Locale.ROOT).codePoints().forEach(l -> {
                    norm.add(l);
                    align.add(origin);
                });
            }
        }
    }

    /** Cut the normalized word [start, end) into vocabulary pieces. */
    private void wordPiece(IntList norm, IntList align, int start, int end, Builder out) {
        int word = out.nextWord++;
        int length = end - start;
        int mark = out.size;
        if (length <= maxInputChars) {
            int at = start;
            while (at < end) {
                int stop = end;
                int id = -1;
                while (at < stop) {
                    String piece = new String(norm.data, at, stop - at);
                    Integer found = vocab.get(at > start ? prefix + piece : piece);
                    if (found != null) {
                        id = found;
                        break;
                    }
                    stop--;
                }
                if (id < 0) {
                    break;
                }
                out.add(id, word, align.data[at], align.data[stop - 1] + 1);
                at = stop;
            }
            if (at == end) {
                return;
            }
            out.size = mark; // no complete cut: the whole word is unknown
        }
        out.add(unkId, word, align.data[start], align.data[end - 1] + 1);
    }

    private static Map<String, Object> object(Object value, String what) {
        if (!(value instanceof Map)) {
            throw new BundleException("tokenizer.json: '" + what + "' must be an object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) value;
        return map;
    }

    /** A growable int array. */
    private static final class IntList {
        int[] data = new int[64];
        int size;

        void add(int value) {
            if (size == data.length) {
                data = Arrays.copyOf(data, size * 2);
            }
            data[size++] = value;
        }
    }

    /** Collects tokens as (id, word, code point start, code point end). */
    private static final class Builder {
        final IntList ids = new IntList();
        final IntList words = new IntList();
        final IntList starts = new IntList();
        final IntList ends = new IntList();
        int size;
        int nextWord;

        void add(int id, int word, int start, int end) {
            ids.size = size;
            words.size = size;
            starts.size = size;
            ends.size = size;
            ids.add(id);
            words.add(word);
            starts.add(start);
            ends.add(end);
            size++;
        }

        Encoding build(int[] charIndex) {
            int[] cpStart = Arrays.copyOf(starts.data, size);
            int[] cpEnd = Arrays.copyOf(ends.data, size);
            int[] charStart = new int[size];
            int[] charEnd = new int[size];
            for (int i = 0; i < size; i++) {
                charStart[i] = charIndex[cpStart[i]];
                charEnd[i] = charIndex[cpEnd[i]];
            }
            return new Encoding(Arrays.copyOf(ids.data, size), Arrays.copyOf(words.data, size),
                    cpStart, cpEnd, charStart, charEnd);
        }
    }
}
