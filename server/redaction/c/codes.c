/* The compiled twin of `_codes` (IBANs and UK NINOs) in `detectors.py`.

   `scan(text, low)` returns exactly `list(detectors._codes(text, low))`. The reference spends its
   time finding where a code may start (`_code_starts`, a regex scan over every digit of the text),
   in its generator, and at each start in regex calls that read a few characters. All of that is
   characters and structure, so it is C here: the scan for starts, `_IBAN`, `_NINO`, and the shape
   rules of `_iban` (country length as a count of groups, one case, print format). What needs more
   than characters is the reference's own object, called from C: `IBAN_LENGTHS` (the country
   table), `iban_valid` (length and mod-97), `_NINO_FIRST`/`_NINO_SECOND` and `nino_prefix_valid`
   (issued prefixes), and the `PiiClass` members.

   Every pattern mirrored here is pinned by `tests/redaction/test_c_codes.py`: when the reference's
   pattern changes, that test fails until this twin follows. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "twin.h"
#include <stdint.h>
#include <string.h>

/* The reference's objects, taken by `configure` (strong references). */
static struct {
    PyObject *iban_length;       /* IBAN_LENGTHS.get */
    PyObject *iban_valid;        /* iban_valid */
    PyObject *nino_first;        /* _NINO_FIRST */
    PyObject *nino_second;       /* _NINO_SECOND */
    PyObject *nino_prefix_valid; /* nino_prefix_valid */
    PyObject *iban_class;        /* PiiClass.IBAN */
    PyObject *national_id;       /* PiiClass.NATIONAL_ID */
} rules;

static PyObject *kind_iban; /* "iban" */
static PyObject *kind_nino; /* "nino" */

/* --- characters, as the reference's regexes read them ----------------------------------------- */

static inline int is_digit(Py_UCS4 c) { return c - '0' < 10u; }                        /* [0-9] */
static inline int is_upper(Py_UCS4 c) { return c - 'A' < 26u; }                        /* [A-Z] */
static inline int is_lower(Py_UCS4 c) { return c - 'a' < 26u; }                        /* [a-z] */
static inline int is_alnum(Py_UCS4 c) { return is_digit(c) || is_upper(c) || is_lower(c); } /* [A-Za-z0-9] */
static inline int is_separator(Py_UCS4 c) { return c == ' ' || c == '-' || c == '.'; } /* [ \-.] */

/* `str.upper` of an ASCII letter or digit. */
static inline Py_UCS4 ascii_upper(Py_UCS4 c) { return is_lower(c) ? c - 'a' + 'A' : c; }

/* Two letters of one case, `(?:[A-Z]{2}|[a-z]{2})`. */
static inline int same_case_letters(Py_UCS4 a, Py_UCS4 b)
{
    return (is_upper(a) && is_upper(b)) || (is_lower(a) && is_lower(b));
}

/* `[ \-.]?` at `i`: where what follows it starts. A separator is never a letter or a digit of any
   script, so the optional separator is taken whenever present and never given back. */
static inline Py_ssize_t after_separator(const Text *t, Py_ssize_t i)
{
    return i < t->n && is_separator(at(t, i)) ? i + 1 : i;
}

/* --- where a code may start (twin of `_code_starts`) ------------------------------------------- */

/* Twin of `_CODE_AT_START.match(text)`: `(?:[A-Z]{2}|[a-z]{2})[ \-.]?[0-9]{2}` at 0. */
static int code_at_start(const Text *t)
{
    if (t->n < 4 || !same_case_letters(at(t, 0), at(t, 1)))
        return 0;
    Py_ssize_t d = after_separator(t, 2);
    return d + 1 < t->n && is_digit(at(t, d)) && is_digit(at(t, d + 1));
}

/* Where a `_CODE_DIGITS` match at `p` (two ASCII digits, `t[p]` and `t[p + 1]`, seen by the caller)
   says a code starts, if `_code_starts` keeps it; -1 otherwise. The lookbehinds: before the digits
   two letters of one case, maybe a separator between, and before those a character that is not an
   ASCII letter or digit (a lookbehind never reads before the text: that character must exist). */
static inline Py_ALWAYS_INLINE Py_ssize_t code_start_before(const Text *t, Py_ssize_t p)
{
    Py_UCS4 c = at(t, p - 1);
    Py_ssize_t start;
    if (is_upper(c) || is_lower(c))
        start = p - 2;
    else if (is_separator(c))
        start = p - 3;
    else
        return -1;
    if (start < 1 || !same_case_letters(at(t, start), at(t, start + 1)))
        return -1;
    /* `[^A-Za-z0-9]`, then `_code_starts`'s `not str.isalnum()` (any script), which implies it */
    return Py_UNICODE_ISALNUM(at(t, start - 1)) ? -1 : start;
}

/* Whether any of the eight bytes at `s` is an ASCII digit, all at once: digits are rare in text,
   and most texts are one-byte strings. Per byte, bit 7 of `from_0` says its low seven bits are at
   least '0', of `past_9` that they are past '9' (neither sum carries into the next byte), and `~x`
   that the byte itself is under 0x80. */
static inline int any_digit_in_8(const Py_UCS1 *s)
{
    uint64_t x;
    memcpy(&x, s, sizeof x);
    uint64_t low7 = x & 0x7f7f7f7f7f7f7f7fu;
    uint64_t from_0 = low7 + 0x5050505050505050u;
    uint64_t past_9 = low7 + 0x4646464646464646u;
    return (from_0 & ~past_9 & ~x & 0x8080808080808080u) != 0;
}

/* The next start from the `_CODE_DIGITS` scan at or after position `*p` (which moves past it), or -1.
   `finditer` resumes after each two-digit match; a match cannot begin on its second digit anyway
   (that needs a letter or separator before), so every digit pair is tried, in order. A pair needs
   a digit at i + 1: where there is none, neither i nor i + 1 begins one; in a one-byte text, eight
   characters without a digit begin none. Inlined per string kind: this loop reads the whole text. */
static inline Py_ALWAYS_INLINE Py_ssize_t next_code_start(const Text *t, Py_ssize_t *p)
{
    Py_ssize_t i = *p;
    while (i + 1 < t->n) {
        if (t->kind == PyUnicode_1BYTE_KIND && i + 8 <= t->n && !any_digit_in_8((const Py_UCS1 *)t->data + i))
            i += 8;
        else if (!is_digit(at(t, i + 1)))
            i += 2;
        else if (!is_digit(at(t, i)))
            i += 1;
        else {
            Py_ssize_t start = code_start_before(t, i);
            i += 2;
            if (start >= 0) {
                *p = i;
                return start;
            }
        }
    }
    *p = i;
    return -1;
}

/* `next_code_start` with the kind a constant, so that `PyUnicode_READ` is one load. */
static Py_ssize_t next_code_start_1(const Text *t, Py_ssize_t *p)
{
    const Text t1 = {PyUnicode_1BYTE_KIND, t->data, t->n};
    return next_code_start(&t1, p);
}

static Py_ssize_t next_code_start_2(const Text *t, Py_ssize_t *p)
{
    const Text t2 = {PyUnicode_2BYTE_KIND, t->data, t->n};
    return next_code_start(&t2, p);
}

static Py_ssize_t next_code_start_4(const Text *t, Py_ssize_t *p)
{
    const Text t4 = {PyUnicode_4BYTE_KIND, t->data, t->n};
    return next_code_start(&t4, p);
}

/* --- IBAN (twins of `_IBAN` and `_iban`) --------------------------------------------------------- */

/* Where the digits after a code start's two letters begin. Every start has `[A-Za-z]{2}[ \-.]?`
   and two ASCII digits there (the scan saw them), so the `\d{2}` of `_IBAN` and `_NINO` holds. */
static inline Py_ssize_t code_digits(const Text *t, Py_ssize_t start) { return after_separator(t, start + 2); }

/* `(?:[ \-.]{0,2}[A-Za-z0-9]){0,most}` from `i`, greedy, in the text cut at `endpos` (a regex
   `match`'s end position): how many groups, and `*end` after the last. A separator is never alnum,
   so each group has one way to match (all the separators there, at most two, then an alnum) and
   the greedy count is the largest: backtracking finds no other. */
static int iban_groups(const Text *t, Py_ssize_t i, Py_ssize_t endpos, int most, Py_ssize_t *end)
{
    const Text cut = {t->kind, t->data, endpos};
    int count = 0;
    while (count < most) {
        Py_ssize_t j = after_separator(&cut, after_separator(&cut, i));
        if (j >= endpos || !is_alnum(at(t, j)))
            break;
        i = j + 1;
        count++;
    }
    *end = i;
    return count;
}

/* Twin of `_IBAN.match(text, start).end()` (`[A-Za-z]{2}[ \-.]?\d{2}(?:[ \-.]{0,2}[A-Za-z0-9]){10,32}`)
   at a code start: the end, or -1 when it does not match. */
static Py_ssize_t iban_match_end(const Text *t, Py_ssize_t start)
{
    Py_ssize_t end;
    return iban_groups(t, code_digits(t, start) + 2, t->n, 32, &end) >= 10 ? end : -1;
}

/* `IBAN_LENGTHS.get(text[start : start + 2].upper())` as a C length: 0 when the country has none,
   -1 with an exception set. */
static Py_ssize_t iban_length(const Text *t, Py_ssize_t start)
{
    /* the two letters are ASCII: `str.upper` is the ASCII one */
    Py_UCS1 code[2] = {(Py_UCS1)ascii_upper(at(t, start)), (Py_UCS1)ascii_upper(at(t, start + 1))};
    PyObject *country = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, code, 2);
    if (country == NULL)
        return -1;
    PyObject *length = PyObject_CallOneArg(rules.iban_length, country);
    Py_DECREF(country);
    if (length == NULL)
        return -1;
    if (length == Py_None) {
        Py_DECREF(length);
        return 0;
    }
    Py_ssize_t value = PyLong_AsSsize_t(length);
    Py_DECREF(length);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < 4) {  /* no country has one; `_IBAN_OF_LENGTH` could not even be built for it */
        PyErr_Format(PyExc_ValueError, "_c_codes: IBAN_LENGTHS has a length of %zd", value);
        return -1;
    }
    return value;
}

/* The shape rules of `_iban` over its match `text[start:end]` (separators, then `compact`): one case
   throughout, and lower case only in the print format (every token but the last of four). Writes
   `compact.upper()` (`length` characters, ASCII) into `iban`. */
static int iban_shape_valid(const Text *t, Py_ssize_t start, Py_ssize_t end, PyObject *iban)
{
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(iban);
    Py_ssize_t length = PyUnicode_GET_LENGTH(iban), written = 0, token = 0;
    int upper = 0, lower = 0, print_format = 1;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = at(t, i);
        if (is_separator(c)) {
            if (token > 0 && token != 4)  /* `_IBAN_SEPARATORS.split`: a run of separators ends a token */
                print_format = 0;
            token = 0;
            continue;
        }
        token++;
        upper |= is_upper(c);
        lower |= is_lower(c);
        if (written < length)  /* always: the match holds `length` alnums (4, then a group each) */
            out[written++] = (Py_UCS1)ascii_upper(c);
    }
    if (written != length || (upper && lower))
        return 0;
    return !lower || print_format;  /* the first character is a letter: lower case if any is */
}

/* Twin of `_iban(text, start, end)`: the IBAN hit, or None; NULL on error. */
static PyObject *iban_hit(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t length = iban_length(t, start);
    if (length <= 0)
        return length < 0 ? NULL : Py_NewRef(Py_None);
    /* `_IBAN_OF_LENGTH[length].match(text, start, end)`: `length - 4` groups, up to `end` */
    Py_ssize_t last;
    if (iban_groups(t, code_digits(t, start) + 2, end, (int)Py_MIN(length - 4, 32), &last) != length - 4)
        return Py_NewRef(Py_None);
    if (last < t->n && is_alnum(at(t, last)))  /* `text[last + 1]`, read in the whole text */
        return Py_NewRef(Py_None);
    PyObject *iban = PyUnicode_New(length, 127);
    if (iban == NULL)
        return NULL;
    int valid = iban_shape_valid(t, start, last, iban);
    if (valid) {
        PyObject *checked = PyObject_CallOneArg(rules.iban_valid, iban);
        valid = checked == NULL ? -1 : PyObject_IsTrue(checked);
        Py_XDECREF(checked);
    }
    if (valid <= 0) {
        Py_DECREF(iban);
        return valid < 0 ? NULL : Py_NewRef(Py_None);
    }
    return hit_tuple(rules.iban_class, kind_iban, start, last, iban);
}

/* --- NINO (twin of `_NINO` and the checks of its value in `_codes`) ----------------------------- */

/* Twin of `_NINO.match(text, start).end()` at a code start, or -1:
   `[A-Za-z]{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?[A-Da-d](?![A-Za-z0-9])`, `\d` being any
   Unicode decimal. Each optional separator is taken when present: none is a decimal or a letter. */
static Py_ssize_t nino_match_end(const Text *t, Py_ssize_t start)
{
    Py_ssize_t i = code_digits(t, start) + 2;
    for (int pair = 0; pair < 2; pair++) {
        i = after_separator(t, i);
        if (i + 1 >= t->n || !Py_UNICODE_ISDECIMAL(at(t, i)) || !Py_UNICODE_ISDECIMAL(at(t, i + 1)))
            return -1;
        i += 2;
    }
    i = after_separator(t, i);
    if (i >= t->n || ascii_upper(at(t, i)) - 'A' >= 4u)  /* [A-Da-d] */
        return -1;
    return i + 1 < t->n && is_alnum(at(t, i + 1)) ? -1 : i + 1;
}

/* `letter in letters` for one of the reference's sets of letters: 1, 0, or -1 on error. */
static int letter_in(PyObject *letters, Py_UCS4 letter)
{
    PyObject *s = PyUnicode_FromOrdinal((int)letter);
    if (s == NULL)
        return -1;
    int in = PySequence_Contains(letters, s);
    Py_DECREF(s);
    return in;
}

/* The checks of a NINO's `value` in `_codes` on its two first characters (upper-cased letters):
   `value[0] in _NINO_FIRST and value[1] in _NINO_SECOND and nino_prefix_valid(value[:2])`.
   1, 0, or -1 with an exception set. */
static int nino_prefix_issued(const Text *t, Py_ssize_t start)
{
    Py_UCS4 first = ascii_upper(at(t, start)), second = ascii_upper(at(t, start + 1));
    int in = letter_in(rules.nino_first, first);
    if (in > 0)
        in = letter_in(rules.nino_second, second);
    if (in <= 0)
        return in;
    Py_UCS1 letters[2] = {(Py_UCS1)first, (Py_UCS1)second};
    PyObject *prefix = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, letters, 2);
    if (prefix == NULL)
        return -1;
    PyObject *valid = PyObject_CallOneArg(rules.nino_prefix_valid, prefix);
    Py_DECREF(prefix);
    if (valid == NULL)
        return -1;
    int truth = PyObject_IsTrue(valid);
    Py_DECREF(valid);
    return truth;
}

/* `_CODE_SEPARATORS.sub("", text[start:end]).upper()` for a NINO match: its letters are ASCII and
   its digits decimals, which have no upper case (the test checks every one). */
static PyObject *nino_value(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t length = 0;
    Py_UCS4 widest = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = at(t, i);
        if (!is_separator(c)) {
            length++;
            widest = Py_MAX(widest, c);
        }
    }
    PyObject *value = PyUnicode_New(length, widest);
    if (value == NULL)
        return NULL;
    int kind = PyUnicode_KIND(value);
    void *data = PyUnicode_DATA(value);
    Py_ssize_t written = 0;
    for (Py_ssize_t i = start; i < end && written < length; i++) {
        Py_UCS4 c = at(t, i);
        if (!is_separator(c))
            PyUnicode_WRITE(kind, data, written++, ascii_upper(c));
    }
    return value;
}

/* The NINO hit at `start` (its match ending at `end`), or None; NULL on error. */
static PyObject *nino_hit(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    int issued = nino_prefix_issued(t, start);
    if (issued <= 0)
        return issued < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *value = nino_value(t, start, end);
    if (value == NULL)
        return NULL;
    return hit_tuple(rules.national_id, kind_nino, start, end, value);
}

/* --- the detector -------------------------------------------------------------------------------- */

/* Twin of one pass of the loop in `_codes`: the IBAN at `start`, else the NINO, appended to `hits`.
   0, or -1 with an exception set. */
static int code_at(const Text *t, Py_ssize_t start, PyObject *hits)
{
    PyObject *hit = Py_NewRef(Py_None);
    Py_ssize_t end = iban_match_end(t, start);
    if (end >= 0)
        Py_SETREF(hit, iban_hit(t, start, end));
    if (hit == Py_None && (end = nino_match_end(t, start)) >= 0)
        Py_SETREF(hit, nino_hit(t, start, end));
    if (hit == NULL)
        return -1;
    int failed = hit != Py_None && PyList_Append(hits, hit) < 0;
    Py_DECREF(hit);
    return failed ? -1 : 0;
}

/* Twin of `_codes(text, low)`: `low` is not read, but must be the text's twin. */
static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (twin_arguments(args, nargs, rules.iban_length != NULL, "_c_codes") < 0)
        return NULL;
    PyObject *text = args[0];
    const Text t = {PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)};
    Py_ssize_t (*next)(const Text *, Py_ssize_t *) = t.kind == PyUnicode_1BYTE_KIND   ? next_code_start_1
                                                     : t.kind == PyUnicode_2BYTE_KIND ? next_code_start_2
                                                                                      : next_code_start_4;
    PyObject *hits = PyList_New(0);
    if (hits == NULL)
        return NULL;
    if (code_at_start(&t) && code_at(&t, 0, hits) < 0)
        goto failed;
    Py_ssize_t p = 1, start;
    while ((start = next(&t, &p)) >= 0)
        if (code_at(&t, start, hits) < 0)
            goto failed;
    return hits;
failed:
    Py_DECREF(hits);
    return NULL;
}

/* --- configuration -------------------------------------------------------------------------------- */

/* What `configure` takes, as attribute paths from the detectors module, slot by slot. */
static const TakenRule taken_rules[] = {
    {"IBAN_LENGTHS.get", &rules.iban_length},
    {"iban_valid", &rules.iban_valid},
    {"_NINO_FIRST", &rules.nino_first},
    {"_NINO_SECOND", &rules.nino_second},
    {"nino_prefix_valid", &rules.nino_prefix_valid},
    {"PiiClass.IBAN", &rules.iban_class},
    {"PiiClass.NATIONAL_ID", &rules.national_id},
};

TWIN_MODULE(codes, "The compiled twin of detectors._codes (IBANs, UK NINOs).");

PyMODINIT_FUNC PyInit__c_codes(void)
{
    kind_iban = PyUnicode_InternFromString("iban");
    kind_nino = PyUnicode_InternFromString("nino");
    if (kind_iban == NULL || kind_nino == NULL)
        return NULL;
    return PyModule_Create(&twin_module);
}
