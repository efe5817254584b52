package org.edgelingua.bridge;

/**
 * Base class of every error the bridge raises on purpose (mirrors edge_lingua.errors).
 *
 * <p>Subclasses: {@link BundleException} (a bundle or tokenizer file cannot be used),
 * {@link InvalidInputException} (bad text or arguments), {@link InferenceException} (the model
 * failed).
 */
public class EdgeLinguaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public EdgeLinguaException(String message) {
        super(message);
    }

    public EdgeLinguaException(String message, Throwable cause) {
        super(message, cause);
    }
}
