package org.edgelingua.bridge;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A token-classifier bundle (edge_lingua.bundle): manifest.json, the model file and the
 * tokenizer, read through a {@link FileSource} so an app can serve them from its assets.
 */
public final class MobileBundle {
    public static final int FORMAT_VERSION = 1;

    /** Reads a file of the bundle by its manifest name (an asset, a file, ...). */
    @FunctionalInterface
    public interface FileSource {
        byte[] read(String name) throws IOException;
    }

    public final Map<String, Object> manifest;
    public final String modelFile;
    public final String modelFormat;
    public final String quantization;
    public final int maxSeqLen;
    public final int keepLabel;
    public final int bos;
    public final int eos;
    public final int pad;
    public final List<String> modelInputs;
    public final WordPieceTokenizer tokenizer;
    private final FileSource files;

    private MobileBundle(Map<String, Object> manifest, FileSource files, WordPieceTokenizer tokenizer) {
        this.manifest = manifest;
        this.files = files;
        this.tokenizer = tokenizer;
        this.modelFile = string(manifest, "model_file");
        this.modelFormat = string(manifest, "model_format");
        Object quant = manifest.get("quantization");
        this.quantization = quant == null ? "none" : quant.toString();
        this.maxSeqLen = integer(manifest.get("max_seq_len"), "max_seq_len");
        Object keep = manifest.get("keep_label");
        this.keepLabel = keep == null ? 1 : integer(keep, "keep_label");
        Object special = manifest.get("special_tokens");
        if (!(special instanceof Map)) {
            throw new BundleException("token-classifier manifest needs special_tokens bos and eos");
        }
        Map<?, ?> specials = (Map<?, ?>) special;
        if (!specials.containsKey("bos") || !specials.containsKey("eos")) {
            throw new BundleException("token-classifier manifest needs special_tokens bos and eos");
        }
        this.bos = integer(specials.get("bos"), "special_tokens.bos");
        this.eos = integer(specials.get("eos"), "special_tokens.eos");
        this.pad = specials.containsKey("pad") ? integer(specials.get("pad"), "special_tokens.pad") : 0;
        List<String> inputs = new ArrayList<>();
        Object listed = manifest.get("model_inputs");
        if (listed instanceof List) {
            for (Object name : (List<?>) listed) {
                inputs.add(name.toString());
            }
        }
        this.modelInputs = List.copyOf(inputs);
    }

    /** Open a bundle folder on the file system. */
    public static MobileBundle open(Path folder, boolean verify) {
        return open(name -> Files.readAllBytes(folder.resolve(name)), verify);
    }

    /** Open a bundle through {@code files}; {@code verify} checks every listed file's sha256. */
    public static MobileBundle open(FileSource files, boolean verify) {
        Map<String, Object> manifest = Json.parseObject(utf8(read(files, "manifest.json")));
        Object version = manifest.get("format_version");
        if (!(version instanceof Long) || (Long) version != FORMAT_VERSION) {
            throw new BundleException("bundle format version " + version + " is not supported "
                    + "(this bridge reads version " + FORMAT_VERSION + ")");
        }
        if (!"token-classifier".equals(manifest.get("kind"))) {
            throw new BundleException("the bundle holds a " + manifest.get("kind")
                    + " model, but a token-classifier bundle is needed");
        }
        Object listed = manifest.get("files");
        if (!(listed instanceof Map)) {
            throw new BundleException("'files' must map file names to sha256 strings");
        }
        Map<?, ?> checksums = (Map<?, ?>) listed;
        for (Object name : checksums.keySet()) {
            String file = name.toString();
            if (file.startsWith("/") || file.contains("..") || file.contains("\\")) {
                throw new BundleException("manifest path " + file + " escapes the bundle");
            }
            if (verify && !sha256(read(files, file)).equals(checksums.get(name))) {
                throw new BundleException(file + " does not match its sha256 in the manifest: "
                        + "the file is corrupt or was changed");
            }
        }
        String tokenizerFile = string(manifest, "tokenizer_file");
        String text = utf8(read(files, tokenizerFile));
        WordPieceTokenizer tokenizer = tokenizerFile.endsWith(".txt")
                ? WordPieceTokenizer.fromVocabTxt(text, true)
                : WordPieceTokenizer.fromTokenizerJson(text);
        return new MobileBundle(manifest, files, tokenizer);
    }

    /** The model file's bytes (for OrtEnvironment.createSession(byte[], options)). */
    public byte[] modelBytes() {
        return read(files, modelFile);
    }

    /** Any file the bundle holds, by its manifest name. */
    public byte[] file(String name) {
        return read(files, name);
    }

    private static byte[] read(FileSource files, String name) {
        try {
            return files.read(name);
        } catch (IOException exc) {
            throw new BundleException("bundle lacks " + name + " or it cannot be read: " + exc, exc);
        }
    }

    private static String utf8(byte[] data) {
        return new String(data, StandardCharsets.UTF_8);
    }

    static String sha256(byte[] data) {
        try {
            StringBuilder hex = new StringBuilder(64);
            for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) {
                hex.append(String.format("%02x", b));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException exc) {
            throw new IllegalStateException("SHA-256 is required on every Java platform", exc);
        }
    }

    private static String string(Map<String, Object> manifest, String key) {
        Object value = manifest.get(key);
        if (!(value instanceof String)) {
            throw new BundleException("manifest.json lacks required field " + key);
        }
        return (String) value;
    }

    private static int integer(Object value, String key) {
        if (!(value instanceof Long)) {
            throw new BundleException("manifest field " + key + " must be an integer, got " + value);
        }
        return ((Long) value).intValue();
    }
}
