package org.edgelingua.bridge;

/** A bundle, its manifest or its tokenizer file cannot be used (edge_lingua.errors.BundleError). */
public class BundleException extends EdgeLinguaException {
    private static final long serialVersionUID = 1L;

    public BundleException(String message) {
        super(message);
    }

    public BundleException(String message, Throwable cause) {
        super(message, cause);
    }
}
