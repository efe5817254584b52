package org.edgelingua.bridge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.edgelingua.bridge.GoldenVectors.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * Replays the Python runtime's golden vectors (export/golden.py) through the Java library.
 *
 * <p>System properties: {@code edgelingua.bundle} (the bundle folder) and
 * {@code edgelingua.golden} (its golden_vectors.json). Every comparison is exact.
 */
public class GoldenParityTest {
    private static MobileBundle bundle;
    private static Map<String, Object> golden;
    private static List<Map<String, Object>> cases;

    @BeforeClass
    public static void load() throws IOException {
        Path bundleDir = Path.of(required("edgelingua.bundle"));
        Path goldenFile = Path.of(required("edgelingua.golden"));
        bundle = MobileBundle.open(bundleDir, true);
        golden = Json.parseObject(Files.readString(goldenFile, StandardCharsets.UTF_8));
        cases = maps(golden.get("cases"));
        assertFalse("the golden file holds no cases", cases.isEmpty());
    }

    @Test
    public void manifestMatchesTheGoldenBundle() {
        Map<String, Object> info = map(golden.get("bundle"));
        assertEquals(info.get("model_file"), bundle.modelFile);
        assertEquals(((Long) info.get("max_seq_len")).intValue(), bundle.maxSeqLen);
        assertEquals(((Long) info.get("keep_label")).intValue(), bundle.keepLabel);
        assertEquals(info.get("model_sha256"), MobileBundle.sha256(bundle.modelBytes()));
        Map<String, Object> special = map(info.get("special_tokens"));
        assertEquals(((Long) special.get("bos")).intValue(), bundle.bos);
        assertEquals(((Long) special.get("eos")).intValue(), bundle.eos);
    }

    @Test
    public void tokenIdsAndOffsetsMatchPython() {
        int checked = 0;
        for (Map<String, Object> context : allContexts(cases)) {
            String text = (String) context.get("text");
            Encoding enc = bundle.tokenizer.encode(text);
            String where = describe(text);
            assertArrayEquals("token ids of " + where, ints(context.get("token_ids")), enc.ids);
            List<Object> offsets = list(context.get("offsets"));
            int[] starts = new int[offsets.size()];
            int[] ends = new int[offsets.size()];
            for (int i = 0; i < offsets.size(); i++) {
                starts[i] = ints(offsets.get(i))[0];
                ends[i] = ints(offsets.get(i))[1];
            }
            assertArrayEquals("code point starts of " + where, starts, enc.cpStart);
            assertArrayEquals("code point ends of " + where, ends, enc.cpEnd);
            for (int i = 0; i < enc.size(); i++) { // UTF-16 offsets address the same characters
                assertEquals(where, enc.cpStart[i], text.codePointCount(0, enc.charStart[i]));
                assertEquals(where, enc.cpEnd[i], text.codePointCount(0, enc.charEnd[i]));
            }
            checked += enc.size();
        }
        assertTrue("no tokens were compared", checked > 1000);
    }

    @Test
    public void wordsAndWindowsMatchPython() {
        for (Map<String, Object> context : allContexts(cases)) {
            String text = (String) context.get("text");
            Segmented seg = Segmented.of(bundle.tokenizer, text);
            String where = describe(text);
            assertArrayEquals("token->word of " + where, ints(context.get("token_word")), seg.tokenWord);
            assertEquals("words of " + where, context.get("words"), seg.words());
            assertEquals("unit kinds of " + where, context.get("word_kinds"), seg.units.kinds);
            assertArrayEquals("protected units of " + where, bools(context.get("word_protected")),
                    seg.units.isProtected);
            List<Object> spans = list(context.get("word_spans"));
            for (int w = 0; w < spans.size(); w++) {
                assertArrayEquals("word span " + w + " of " + where, ints(spans.get(w)),
                        new int[] {seg.wordCpStart[w], seg.wordCpEnd[w]});
            }
            List<int[]> windows = Segmentation.windowBounds(seg, bundle.maxSeqLen - 2,
                    Compressor.DEFAULT_CHUNK_END_TOKENS);
            assertEquals("windows of " + where, pairs(context.get("windows")), windows.stream()
                    .map(Arrays::toString).collect(java.util.stream.Collectors.toList()));
        }
    }

    @Test
    public void generatedTextsSegmentAndRebuildLikePython() {
        List<Map<String, Object>> generated = maps(golden.get("segmentation_cases"));
        assertTrue("too few generated segmentation cases", generated.size() >= 100);
        int masks = 0;
        for (Map<String, Object> c : generated) {
            String text = (String) c.get("text");
            String where = describe(text);
            Segmented seg = Segmented.of(bundle.tokenizer, text);
            List<Object> spans = list(c.get("word_spans"));
            assertEquals("unit count of " + where, spans.size(), seg.nWords());
            for (int w = 0; w < spans.size(); w++) {
                assertArrayEquals("unit span " + w + " of " + where, ints(spans.get(w)),
                        new int[] {seg.wordCpStart[w], seg.wordCpEnd[w]});
            }
            assertEquals("unit kinds of " + where, c.get("word_kinds"), seg.units.kinds);
            assertArrayEquals("protected units of " + where, bools(c.get("word_protected")),
                    seg.units.isProtected);
            assertArrayEquals("token->unit of " + where, ints(c.get("token_word")), seg.tokenWord);
            assertArrayEquals("forced units of " + where + " for " + c.get("force_tokens"),
                    bools(c.get("forced")),
                    Selection.forcedWords(seg.words(), strings(c.get("force_tokens")), false));
            List<Object> keepMasks = list(c.get("keep_masks"));
            List<Object> joined = list(c.get("joined"));
            for (int k = 0; k < keepMasks.size(); k++) {
                assertEquals("text rebuilt from mask " + k + " of " + where, joined.get(k),
                        Segmentation.joinUnits(seg, bools(keepMasks.get(k)), 0));
                masks++;
            }
        }
        assertTrue("no rebuilt texts were compared", masks >= 300);
    }

    @Test
    public void rateOneIsTheIdentityOnGeneratedTexts() {
        Compressor compressor = Compressor.forBundle(bundle, ids -> new float[ids.length][2]);
        int compared = 0;
        for (Map<String, Object> c : maps(golden.get("segmentation_cases"))) {
            String text = (String) c.get("text");
            if (text.codePoints().allMatch(PythonText::isSpace)) {
                continue;
            }
            CompressionResult result = compressor.compress(text, new Compressor.Options().rate(1.0));
            assertEquals("rate 1.0 of " + describe(text), text, result.compressedPrompt);
            compared++;
        }
        assertTrue("no generated text was compressed", compared >= 100);
    }

    @Test
    public void customProtectPatternsKeepTheirMatchesWhole() {
        Compressor dropping = Compressor.forBundle(bundle, ids -> {
            float[][] logits = new float[ids.length][];
            Arrays.fill(logits, new float[] {5f, -5f});
            return logits;
        });
        String text = "Please bring the signed forms to the front desk before the meeting about ticket 4711.";
        List<String> protect = List.of("ticket \\d+");
        CompressionResult plain = dropping.compress(text, new Compressor.Options().rate(0.2));
        assertFalse(plain.compressedPrompt, plain.compressedPrompt.contains("ticket 4711"));
        CompressionResult kept = dropping.compress(text, new Compressor.Options().rate(0.2).protect(protect));
        assertTrue(kept.compressedPrompt, kept.compressedPrompt.contains("ticket 4711"));
        Units units = Segmented.of(bundle.tokenizer, text, Atoms.makeProtection(protect)).units;
        assertEquals("ticket 4711", units.unit(units.kinds.indexOf("custom")));
    }

    @Test
    public void keepProbabilitiesMatchPythonBitForBit() {
        for (Map<String, Object> context : allContexts(cases)) {
            String text = (String) context.get("text");
            Compressor compressor = Compressor.forBundle(bundle, new RecordedModel(List.of(context)));
            Compressor.ContextScores scores = compressor.score(text, Compressor.DEFAULT_CHUNK_END_TOKENS);
            assertArrayEquals("token probabilities of " + describe(text),
                    floats(context.get("token_probs")), scores.tokenProbs, 0.0f);
            assertArrayEquals("word probabilities of " + describe(text),
                    floats(context.get("word_probs")), scores.wordProbs, 0.0f);
        }
    }

    @Test
    public void compressedOutputMatchesPython() {
        int compared = 0;
        for (Map<String, Object> c : cases) {
            List<Map<String, Object>> contexts = maps(c.get("contexts"));
            List<String> texts = new ArrayList<>();
            for (Map<String, Object> context : contexts) {
                texts.add((String) context.get("text"));
            }
            for (Map<String, Object> expected : maps(c.get("results"))) {
                Map<String, Object> opts = map(expected.get("options"));
                // a result run with other chunk ends saw other windows; Python recorded their logits
                Object rescored = expected.get("rescored");
                Compressor compressor = Compressor.forBundle(bundle,
                        new RecordedModel(contexts, rescored == null ? contexts : maps(rescored)));
                CompressionResult result = compressor.compress(texts, options(opts));
                String where = c.get("name") + " with " + opts;
                assertEquals("compressed prompt of " + where, expected.get("compressed_prompt"),
                        result.compressedPrompt);
                assertEquals("contexts of " + where, expected.get("compressed_contexts"),
                        result.compressedContexts);
                List<Object> masks = list(expected.get("kept_mask"));
                for (int i = 0; i < masks.size(); i++) {
                    assertArrayEquals("kept words of " + where, bools(masks.get(i)), result.keptMask.get(i));
                }
                assertEquals("origin tokens of " + where,
                        ((Long) expected.get("origin_tokens")).intValue(), result.originTokens);
                assertEquals("compressed tokens of " + where,
                        ((Long) expected.get("compressed_tokens")).intValue(), result.compressedTokens);
                assertEquals("coverage of " + where, ((Number) expected.get("coverage")).doubleValue(),
                        result.coverage, 0.0);
                assertEquals("warnings of " + where, expected.get("warnings"), result.warnings);
                compared++;
            }
        }
        assertTrue("no compression results were compared", compared >= cases.size());
    }

    @Test
    public void vocabTxtTokenizesLikeTokenizerJson() throws IOException {
        Map<String, Object> root = Json.parseObject(new String(
                bundle.file((String) bundle.manifest.get("tokenizer_file")), StandardCharsets.UTF_8));
        Map<String, Object> vocab = map(map(root.get("model")).get("vocab"));
        String[] pieces = new String[vocab.size()];
        vocab.forEach((piece, id) -> pieces[((Long) id).intValue()] = piece);
        WordPieceTokenizer fromTxt = WordPieceTokenizer.fromVocabTxt(String.join("\n", pieces) + "\n", true);
        for (Map<String, Object> context : allContexts(cases)) {
            String text = (String) context.get("text");
            assertArrayEquals("vocab.txt ids of " + describe(text), ints(context.get("token_ids")),
                    fromTxt.encode(text).ids);
        }
    }

    @Test
    public void badInputIsRejectedWithTypedErrors() {
        Compressor compressor = Compressor.forBundle(bundle, ids -> new float[ids.length][2]);
        Compressor.Options ok = new Compressor.Options();
        assertThrows(InvalidInputException.class, () -> compressor.compress(" \n\t\u00a0", ok));
        assertThrows(InvalidInputException.class, () -> compressor.compress(List.of(), ok));
        assertThrows(InvalidInputException.class, () -> compressor.compress("bad \ud800 text", ok));
        assertThrows(InvalidInputException.class,
                () -> compressor.compress("text", new Compressor.Options().rate(0.0)));
        assertThrows(InvalidInputException.class,
                () -> compressor.compress("text", new Compressor.Options().rate(1.5)));
        assertThrows(InvalidInputException.class,
                () -> compressor.compress("text", new Compressor.Options().targetToken(0)));
        assertThrows(InvalidInputException.class,
                () -> compressor.compress("a <llmlingua, rate=0.5>tagged</llmlingua> text", ok));
        assertThrows(InvalidInputException.class,
                () -> compressor.compress("text", new Compressor.Options().protect(List.of("(unclosed"))));
        assertThrows(InvalidInputException.class, () -> Selection.forcePhrases(Arrays.asList("a", null)));
        Compressor wrongShape = Compressor.forBundle(bundle, ids -> new float[ids.length + 1][2]);
        assertThrows(InferenceException.class, () -> wrongShape.compress("some text", ok));
        Compressor failing = Compressor.forBundle(bundle, ids -> {
            throw new IllegalStateException("boom");
        });
        assertThrows(InferenceException.class, () -> failing.compress("some text", ok));
    }

    @Test
    public void corruptBundlesAndJsonAreRejected() {
        Path dir = Path.of(required("edgelingua.bundle"));
        MobileBundle.FileSource corrupt = name -> {
            byte[] data = Files.readAllBytes(dir.resolve(name));
            if (name.equals(bundle.modelFile)) {
                data[data.length / 2] ^= 1;
            }
            return data;
        };
        assertThrows(BundleException.class, () -> MobileBundle.open(corrupt, true));
        MobileBundle.open(corrupt, false); // without verification the bytes are not checked
        MobileBundle.FileSource missing = name -> {
            if (name.equals(bundle.modelFile)) {
                throw new java.io.FileNotFoundException(name);
            }
            return Files.readAllBytes(dir.resolve(name));
        };
        assertThrows(BundleException.class, () -> MobileBundle.open(missing, true));
        assertThrows(BundleException.class, () -> Json.parse("{\"a\": [1, 2,]}"));
        assertThrows(BundleException.class, () -> Json.parse("{\"a\": 1} x"));
        assertEquals("\ud83d\ude80", Json.parse("\"\\ud83d\\ude80\""));
    }
}
