package org.edgelingua.bridge;

/** The text or an argument is not acceptable (edge_lingua.errors.InvalidInputError). */
public class InvalidInputException extends EdgeLinguaException {
    private static final long serialVersionUID = 1L;

    public InvalidInputException(String message) {
        super(message);
    }
}
