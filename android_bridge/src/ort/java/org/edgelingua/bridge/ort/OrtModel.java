package org.edgelingua.bridge.ort;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import ai.onnxruntime.providers.NNAPIFlags;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import org.edgelingua.bridge.BundleException;
import org.edgelingua.bridge.Compressor;
import org.edgelingua.bridge.InferenceException;
import org.edgelingua.bridge.MobileBundle;

/**
 * A bundle's classifier on onnxruntime (com.microsoft.onnxruntime:onnxruntime-android): the thin
 * {@link Compressor.Model} an app passes to {@link Compressor#forBundle}.
 *
 * <p>Each window runs alone as [bos, window..., eos] with an all-ones attention mask and zero
 * token types, exactly as the Python runtime runs it on CPU (batch size 1), and the logits of the
 * special tokens are dropped. Reference source: it is not compiled or tested where the bridge's
 * CI runs, because the onnxruntime Java binding is only on Maven Central.
 */
public final class OrtModel implements Compressor.Model, AutoCloseable {
    /** Which execution provider to ask for; onnxruntime falls back to CPU for unsupported nodes. */
    public enum Provider {
        /** Dynamic-INT8 or fp32 bundles; works everywhere. */
        CPU,
        /** XNNPACK CPU kernels (fp32 graphs). */
        XNNPACK,
        /** Android NNAPI: needs the static QDQ bundle (fixed shapes, QDQ INT8). */
        NNAPI,
        /** Qualcomm HTP through QNN: needs the static QDQ bundle. */
        QNN
    }

    private final OrtEnvironment env;
    private final OrtSession session;
    private final MobileBundle bundle;
    private final Map<String, OnnxJavaType> inputTypes = new HashMap<>();
    /** Fixed sequence length of a static-shape (QDQ, NNAPI/QNN) model, or -1 when dynamic. */
    private final int fixedWidth;

    private OrtModel(OrtEnvironment env, OrtSession session, MobileBundle bundle) throws OrtException {
        this.env = env;
        this.session = session;
        this.bundle = bundle;
        for (Map.Entry<String, NodeInfo> e : session.getInputInfo().entrySet()) {
            if (!(e.getValue().getInfo() instanceof TensorInfo)) {
                throw new BundleException("model input " + e.getKey() + " is not a tensor");
            }
            inputTypes.put(e.getKey(), ((TensorInfo) e.getValue().getInfo()).type);
        }
        if (!inputTypes.containsKey("input_ids")) {
            throw new BundleException("the model has no 'input_ids' input");
        }
        long[] shape = ((TensorInfo) session.getInputInfo().get("input_ids").getInfo()).getShape();
        this.fixedWidth = shape.length == 2 && shape[1] > 0 ? (int) shape[1] : -1;
    }

    /** Open the bundle's model with {@code provider} and {@code threads} intra-op threads (0: default). */
    public static OrtModel open(MobileBundle bundle, Provider provider, int threads) {
        try {
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
                options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
                if (threads > 0) {
                    options.setIntraOpNumThreads(threads);
                }
                switch (provider) {
                    case XNNPACK:
                        options.addXnnpack(Map.of());
                        break;
                    case NNAPI:
                        options.addNnapi(EnumSet.noneOf(NNAPIFlags.class));
                        break;
                    case QNN:
                        options.addQnn(Map.of("backend_path", "libQnnHtp.so"));
                        break;
                    default:
                        break;
                }
                return new OrtModel(env, env.createSession(bundle.modelBytes(), options), bundle);
            }
        } catch (OrtException exc) {
            throw new BundleException("onnxruntime cannot open " + bundle.modelFile + " with "
                    + provider + ": " + exc.getMessage(), exc);
        }
    }

    @Override
    public float[][] logits(int[] window) {
        int width = window.length + 2;
        if (fixedWidth > 0 && width > fixedWidth) {
            throw new InferenceException("a window of " + width + " tokens does not fit the model's "
                    + "fixed length " + fixedWidth, null);
        }
        // a static-shape model gets the window padded (pad id, attention 0) to its fixed length
        long[][] ids = new long[1][fixedWidth > 0 ? fixedWidth : width];
        java.util.Arrays.fill(ids[0], bundle.pad);
        long[][] mask = new long[1][ids[0].length];
        long[][] types = new long[1][ids[0].length];
        ids[0][0] = bundle.bos;
        for (int i = 0; i < window.length; i++) {
            ids[0][i + 1] = window[i];
        }
        ids[0][width - 1] = bundle.eos;
        java.util.Arrays.fill(mask[0], 0, width, 1L);
        Map<String, long[][]> values = Map.of("input_ids", ids, "attention_mask", mask,
                "token_type_ids", types);
        Map<String, OnnxTensor> feed = new HashMap<>();
        try {
            for (Map.Entry<String, OnnxJavaType> input : inputTypes.entrySet()) {
                long[][] value = values.get(input.getKey());
                if (value == null) {
                    throw new BundleException("the model wants an input the bridge does not feed: "
                            + input.getKey());
                }
                feed.put(input.getKey(), input.getValue() == OnnxJavaType.INT32
                        ? OnnxTensor.createTensor(env, toInt(value))
                        : OnnxTensor.createTensor(env, value));
            }
            try (OrtSession.Result result = session.run(feed)) {
                OnnxValue out = result.get("logits")
                        .orElseThrow(() -> new BundleException("the model has no 'logits' output"));
                float[][] rows = ((float[][][]) out.getValue())[0];
                return java.util.Arrays.copyOfRange(rows, 1, window.length + 1);
            }
        } catch (OrtException exc) {
            throw new InferenceException("onnxruntime failed on a window of " + width + " tokens: "
                    + exc.getMessage(), exc);
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    private static int[][] toInt(long[][] value) {
        int[][] out = new int[value.length][];
        for (int r = 0; r < value.length; r++) {
            out[r] = java.util.Arrays.stream(value[r]).mapToInt(v -> (int) v).toArray();
        }
        return out;
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException exc) {
            throw new InferenceException("onnxruntime failed to close the session", exc);
        }
    }
}
