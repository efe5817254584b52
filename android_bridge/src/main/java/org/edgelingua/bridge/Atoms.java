package org.edgelingua.bridge;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Atoms (edge_lingua.atoms): URLs, e-mail addresses, paths, UUIDs, hashes, IP addresses, dates
 * and times, versions, numbers, @mentions, #tags and identifiers, kept or dropped whole.
 *
 * <p>The patterns are Python's, character for character, translated by {@link PythonText}
 * (Python's Unicode {@code \w \s \d}). Spans are UTF-16 indices into the text.
 */
public final class Atoms {
    public static final List<String> CATEGORIES = List.of("url", "email", "path", "uuid", "hash", "ip",
            "datetime", "version", "number", "identifier", "mention", "hashtag");
    /** Kept whatever the budget unless the caller says otherwise (Python's DEFAULT_PROTECT). */
    public static final List<String> DEFAULT_PROTECT = List.of("url", "email", "path", "uuid", "hash", "ip");

    private static final String TRAIL = ".,;:!?)]}'\"\u201d\u2019>";
    // U.S., e.g., i.e.: single letters between periods; the last period belongs to the abbreviation
    private static final Pattern ABBREVIATION = Pattern.compile("(?:[A-Za-z]\\.)+[A-Za-z]");
    private static final Map<Character, Character> OPENING = Map.of(')', '(', ']', '[', '}', '{', '>', '<');
    private static final Set<String> TRIMMED = Set.of("url", "path", "email", "identifier", "version",
            "mention", "hashtag");
    private static final String MONTH = "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?"
            + "|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";
    // edge_lingua/atoms.py _PATTERNS (f-strings resolved), first match at a position wins
    private static final String[][] PATTERNS = {
        {"url", "(?:[A-Za-z][A-Za-z0-9+.\\-]*://|www\\.|mailto:)[^\\s<>\\\"'`]+"},
        {"email", "[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)+"},
        {"uuid", "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"},
        {"ip", "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?:\\.(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}"
                + "(?::\\d{1,5})?(?:/\\d{1,2})?(?![\\w.])|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
                + "|(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?"
                + "|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)"},
        {"path", "[A-Za-z]:\\\\[^\\s\\\"'<>|*?]*|\\\\\\\\[^\\s\\\"'<>|*?\\\\]+\\\\[^\\s\\\"'<>|*?]*"
                + "|(?<![\\w.])(?:~|\\.{1,2})?/[\\w.@%+~\\-]+(?:/[\\w.@%+~\\-]*)*"
                + "|(?=[\\w.@%+~/\\-]*[A-Za-z])(?:[\\w@%+\\-]+(?:/[\\w.@%+~\\-]+){2,}/?"
                + "|[\\w@%+\\-]+/[\\w@%+~\\-]*(?:\\.[A-Za-z]\\w*)+)"},
        {"datetime", "\\d{4}-\\d{2}-\\d{2}(?:[T ]\\d{1,2}:\\d{2}(?::\\d{2}(?:\\.\\d+)?)?"
                + "(?:Z|[+-]\\d{2}:?\\d{2})?)?|\\d{1,2}[/.]\\d{1,2}[/.]\\d{2,4}(?![\\w.])"
                + "|\\d{1,2}:\\d{2}(?::\\d{2})?(?:[ap]\\.?m\\.?)?(?![\\w:])"
                + "|(?<![A-Za-z])" + MONTH + "\\.? \\d{1,2}(?:st|nd|rd|th)?,? \\d{4}(?![\\w])"
                + "|\\d{1,2}(?:st|nd|rd|th)? " + MONTH + " \\d{4}(?![\\w])"},
        {"hash", "(?:0x[0-9A-Fa-f]+|(?=[0-9A-Fa-f]*\\d)(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{7,})(?![\\w])"},
        {"version", "[vV]\\d+(?:\\.\\d+)+(?:[\\-+][0-9A-Za-z.\\-]+)?|\\d+\\.\\d+\\.\\d+(?:[\\-+][0-9A-Za-z.]+)?"
                + "(?![\\w.])|[A-Za-z][A-Za-z0-9]*-\\d+(?:\\.\\d+)+"},
        {"number", "(?<![\\w.,])[+\\-\u2212]?[$\u20ac\u00a3\u00a5\u20b9]?(?:\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.\\d+)?"
                + "(?:[eE][+\\-]?\\d+)?%?(?![\\w])|[$\u20ac\u00a3\u00a5\u20b9]\\d+(?:\\.\\d+)?"},
        {"mention", "(?<![\\w@])@[A-Za-z_][\\w.\\-]*\\w"},
        {"hashtag", "(?<![\\w#&])#[A-Za-z_][\\w\\-]*"},
        {"identifier", "_*[A-Za-z0-9]+(?:(?:_+|\\.|-|::)[A-Za-z0-9]+)+_*(?:\\(\\))?|_+[A-Za-z0-9]+_*"
                + "|[a-z]+[0-9]*(?:[A-Z][a-z0-9]*)+|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+"},
    };
    private static final Pattern ATOM = atomPattern();

    private Atoms() {
    }

    /** One atom: UTF-16 span {@code [start, end)} of a category (or "custom"). */
    public static final class Atom {
        public final int start;
        public final int end;
        public final String category;

        Atom(int start, int end, String category) {
            this.start = start;
            this.end = end;
            this.category = category;
        }
    }

    /** What is kept whatever the budget: atom categories and the caller's patterns. */
    public static final class Protection {
        public final Set<String> categories;
        public final List<Pattern> patterns;

        Protection(Set<String> categories, List<Pattern> patterns) {
            this.categories = Collections.unmodifiableSet(categories);
            this.patterns = List.copyOf(patterns);
        }

        public boolean covers(String category) {
            return categories.contains(category);
        }
    }

    /**
     * Validate {@code protect} (Python's make_protection): category names, "default", "all",
     * "none"; any other string is a java.util.regex pattern whose matches are kept (category
     * "custom"). {@code null} means {@link #DEFAULT_PROTECT}.
     */
    public static Protection makeProtection(List<String> protect) {
        if (protect == null) {
            return new Protection(new HashSet<>(DEFAULT_PROTECT), List.of());
        }
        Set<String> categories = new HashSet<>();
        List<Pattern> patterns = new ArrayList<>();
        for (String item : protect) {
            if (item == null) {
                throw new InvalidInputException("protect takes category names or regular expressions, got null");
            } else if (CATEGORIES.contains(item)) {
                categories.add(item);
            } else if (item.equals("all")) {
                categories.addAll(CATEGORIES);
            } else if (item.equals("default")) {
                categories.addAll(DEFAULT_PROTECT);
            } else if (!item.equals("none")) {
                try {
                    patterns.add(Pattern.compile(item));
                } catch (PatternSyntaxException exc) {
                    throw new InvalidInputException("protect pattern " + item
                            + " is not a valid regular expression: " + exc.getDescription());
                }
            }
        }
        return new Protection(categories, patterns);
    }

    /** Non-overlapping atoms of {@code text} in order; {@code extra} patterns (category custom) win. */
    public static List<Atom> findAtoms(String text, List<Pattern> extra) {
        List<Atom> atoms = new ArrayList<>();
        List<int[]> taken = new ArrayList<>();
        for (Pattern pattern : extra) {
            Matcher m = pattern.matcher(text);
            while (m.find()) {
                if (m.end() > m.start() && m.group().indexOf('\n') < 0) {
                    atoms.add(new Atom(m.start(), m.end(), "custom"));
                    taken.add(new int[] {m.start(), m.end()});
                }
            }
        }
        int position = 0;
        Matcher m = ATOM.matcher(text);
        while (m.find()) {
            int start = m.start();
            int end = m.end();
            String category = category(m);
            if (TRIMMED.contains(category)) {
                end = trim(text, start, end);
            }
            if (category.equals("identifier") && end < text.length() && text.charAt(end) == '.'
                    && ABBREVIATION.matcher(text).region(start, end).matches()) {
                end++;
            }
            if (start < position || overlaps(taken, start, end)) {
                continue;
            }
            atoms.add(new Atom(start, end, category));
            position = end;
        }
        atoms.sort(Comparator.comparingInt(a -> a.start)); // stable, as Python's sort
        return atoms;
    }

    /** The end of an atom without the sentence punctuation after it (balanced brackets stay). */
    static int trim(String text, int start, int end) {
        while (end > start + 1 && TRAIL.indexOf(text.charAt(end - 1)) >= 0) {
            char closing = text.charAt(end - 1);
            Character opening = OPENING.get(closing);
            if (opening != null && count(text, start, end, opening) >= count(text, start, end, closing)) {
                break;
            }
            end--;
        }
        return end;
    }

    private static int count(String text, int start, int end, char c) {
        int n = 0;
        for (int i = start; i < end; i++) {
            if (text.charAt(i) == c) {
                n++;
            }
        }
        return n;
    }

    private static boolean overlaps(List<int[]> spans, int start, int end) {
        for (int[] s : spans) {
            if (s[0] < end && start < s[1]) {
                return true;
            }
        }
        return false;
    }

    private static String category(Matcher m) {
        for (String[] p : PATTERNS) {
            if (m.start(p[0]) >= 0) {
                return p[0];
            }
        }
        return "identifier";
    }

    private static Pattern atomPattern() {
        StringBuilder all = new StringBuilder();
        for (String[] p : PATTERNS) {
            all.append(all.length() == 0 ? "" : "|").append("(?<").append(p[0]).append('>')
                    .append(PythonText.translate(p[1])).append(')');
        }
        return Pattern.compile(all.toString());
    }
}
