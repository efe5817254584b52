package org.edgelingua.bridge;

/** The model failed while scoring a window (edge_lingua.errors.InferenceError). */
public class InferenceException extends EdgeLinguaException {
    private static final long serialVersionUID = 1L;

    public InferenceException(String message, Throwable cause) {
        super(message, cause);
    }
}
