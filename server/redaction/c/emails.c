/* The compiled twin of `_emails` (plain and obfuscated email addresses) in `detectors.py`.

   `scan(text, low)` returns exactly `list(detectors._emails(text, low))`. The reference's cost is
   in reading the whole text from Python: `str.find("@")` loops, the `_AT_CORE` scan of `low`, the
   generator, and the glue at each candidate. Those scans and that glue are C here, as are the
   small character rules met at each candidate: `_local_start` (`_TO_LAST_NOT_LOCAL`, the
   `_LOCAL_TAIL` character class), `_OBFUSCATED_AT`, `_TLD`, `_ADDRESS_LIKE_LOCAL`, the leading
   dot/quote strip and the whitespace widening. The patterns that backtrack over a whole domain
   are the reference's own objects, called from C at candidates only: `_DOMAIN.match`,
   `_OBFUSCATED_DOMAIN.match`, `_DOT_SEPARATOR.split`; so are `_FREEMAIL`, `PiiClass.EMAIL`, and
   `str.lower` for the values.

   Every pattern mirrored here is pinned by `tests/redaction/test_c_emails.py`: when the
   reference's pattern changes, that test fails until this twin follows. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "twin.h"
#include <stdint.h>
#include <string.h>

/* The reference's objects, taken by `configure` (strong references). */
static struct {
    PyObject *domain_match;            /* _DOMAIN.match */
    PyObject *obfuscated_domain_match; /* _OBFUSCATED_DOMAIN.match */
    PyObject *dot_separator_split;     /* _DOT_SEPARATOR.split */
    PyObject *freemail;                /* _FREEMAIL */
    PyObject *email;                   /* PiiClass.EMAIL */
} rules;

static PyObject *kind_email; /* "email" */
static PyObject *name_end;   /* "end" */
static PyObject *name_lower; /* "lower" */
static PyObject *dot;        /* "." */
static PyObject *at_sign;    /* "@" */

/* --- characters, as the reference's regexes read them --------------------------------------------- */

static inline int is_ascii_letter(Py_UCS4 c) { return (c | 0x20) - 'a' < 26u; } /* [A-Za-z] */
static inline int is_ascii_digit(Py_UCS4 c) { return c - '0' < 10u; }         /* [0-9] */
static inline int is_latin(Py_UCS4 c) { return c - 0xc0u <= 0x24fu - 0xc0u; } /* [\u00c0-\u024f] */

/* `[A-Za-z0-9._%+\-\u00c0-\u024f]`: a character of a local part (`_LOCAL_TAIL`, `_TO_LAST_NOT_LOCAL`). */
static inline int is_local(Py_UCS4 c)
{
    return is_ascii_letter(c) || is_ascii_digit(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' ||
           is_latin(c);
}

/* `[A-Za-z0-9\u00c0-\u024f]`: what `_DOMAIN` must start with (a cheap no before calling it). */
static inline int is_domain_first(Py_UCS4 c) { return is_ascii_letter(c) || is_ascii_digit(c) || is_latin(c); }

/* `(?i)[A-Za-z0-9\-]`, a label character of `_OBFUSCATED_DOMAIN`: under IGNORECASE `[A-Za-z]` also
   takes the four letters whose case folds onto an ASCII one (İ ı ſ and the Kelvin sign). */
static inline int is_spelled_label(Py_UCS4 c)
{
    return is_ascii_letter(c) || is_ascii_digit(c) || c == '-' || c == 0x130 || c == 0x131 || c == 0x17f ||
           c == 0x212a;
}

/* `[\[({<]` and `[\])}>]` of `_OBFUSCATED_AT`. */
static inline int is_opener(Py_UCS4 c) { return c == '[' || c == '(' || c == '{' || c == '<'; }
static inline int is_closer(Py_UCS4 c) { return c == ']' || c == ')' || c == '}' || c == '>'; }

/* `str.isspace` of one character, and `\s` in a str pattern: the same test. */
static inline int is_space(Py_UCS4 c) { return Py_UNICODE_ISSPACE(c); }

static inline int is_a(Py_UCS4 c) { return c == 'a' || c == 'A'; } /* [aA] */
static inline int is_t(Py_UCS4 c) { return c == 't' || c == 'T'; } /* [tT] */

/* --- scans over the whole text ---------------------------------------------------------------------- */

/* `text.find("@", from)`: -1 when there is none, -2 with an exception set. (`PyUnicode_FindChar`
   reads every kind with `memchr`.) */
static Py_ssize_t find_at_sign(PyObject *text, Py_ssize_t n, Py_ssize_t from)
{
    return from < n ? PyUnicode_FindChar(text, '@', from, n, 1) : -1;
}

/* Whether `_AT_CORE` (`at[\s\])}>]`) matches in `low` at `i`. */
static inline Py_ALWAYS_INLINE int at_core(const Text *low, Py_ssize_t i)
{
    if (i + 2 >= low->n || at(low, i) != 'a' || at(low, i + 1) != 't')
        return 0;
    Py_UCS4 c = at(low, i + 2);
    return is_space(c) || is_closer(c);
}

/* Where the next `_AT_CORE` match in `low` starts, at or after `from`; -1 when none. Matches
   cannot overlap (the character after "at" is neither 'a' nor 't'), so every place that matches
   is one `finditer` yields. This reads the whole text: a word of 8 bytes at a time is tested for
   an "a" in one lane with a "t" in the next (a lane is a character: 8, 4 or 2 of them), with the
   exact test for any zero lane, `(v - ones) & ~v & high`. Inlined per kind, a constant there. */
static inline Py_ALWAYS_INLINE Py_ssize_t next_at_core(const Text *low, Py_ssize_t from)
{
    const Py_ssize_t lanes = 8 / low->kind;
    const uint64_t ones = UINT64_MAX / ((UINT64_C(1) << (8 * low->kind)) - 1); /* 1 in each lane */
    const uint64_t high = ones << (8 * low->kind - 1);
    const char *bytes = low->data;
    Py_ssize_t i = from;
    while (i + 2 < low->n) {
        if (i + lanes + 1 <= low->n) {
            uint64_t here, next;
            memcpy(&here, bytes + i * low->kind, sizeof here);
            memcpy(&next, bytes + (i + 1) * low->kind, sizeof next);
            uint64_t v = (here ^ (ones * 'a')) | (next ^ (ones * 't'));
            if (((v - ones) & ~v & high) == 0) {
                i += lanes;
                continue;
            }
            for (Py_ssize_t j = i; j < i + lanes; j++)
                if (at_core(low, j))
                    return j;
            i += lanes;
        } else if (at_core(low, i)) {
            return i;
        } else {
            i++;
        }
    }
    return -1;
}

static Py_ssize_t next_at_core_1(const Text *low, Py_ssize_t from)
{
    const Text l1 = {PyUnicode_1BYTE_KIND, low->data, low->n};
    return next_at_core(&l1, from);
}

static Py_ssize_t next_at_core_2(const Text *low, Py_ssize_t from)
{
    const Text l2 = {PyUnicode_2BYTE_KIND, low->data, low->n};
    return next_at_core(&l2, from);
}

static Py_ssize_t next_at_core_4(const Text *low, Py_ssize_t from)
{
    const Text l4 = {PyUnicode_4BYTE_KIND, low->data, low->n};
    return next_at_core(&l4, from);
}

/* --- rules at one candidate --------------------------------------------------------------------------- */

/* Twin of `_local_start(text, end)`: where the local part ending at `end` starts, or -1. The last
   character in the 64 before `end` that cannot be in a local part cuts it (`_TO_LAST_NOT_LOCAL`'s
   greedy `.*` ends there); with none, the window's start. */
static Py_ssize_t local_start(const Text *t, Py_ssize_t end)
{
    Py_ssize_t window = end > 64 ? end - 64 : 0;
    Py_ssize_t start = end;
    while (start > window && is_local(at(t, start - 1)))
        start--;
    return start < end ? start : -1;
}

/* Twin of `_OBFUSCATED_AT.match` at `s` in the text cut at `endpos`: `[\[({<] ?[aA][tT] ?[\])}>]`
   or `\s[aA][tT]\s`; the match's end, or -1. Each optional space is followed by a character that
   is not a space, so taking it when present is the only way to match: no backtracking to try. */
static Py_ssize_t obfuscated_at_end(const Text *t, Py_ssize_t s, Py_ssize_t endpos)
{
    const Text cut = {t->kind, t->data, endpos};
    Py_UCS4 c = at(&cut, s);
    if (is_opener(c)) {
        Py_ssize_t i = s + 1;
        if (i < endpos && at(&cut, i) == ' ')
            i++;
        if (i + 1 >= endpos || !is_a(at(&cut, i)) || !is_t(at(&cut, i + 1)))
            return -1;
        i += 2;
        if (i < endpos && at(&cut, i) == ' ')
            i++;
        return i < endpos && is_closer(at(&cut, i)) ? i + 1 : -1;
    }
    if (is_space(c) && s + 3 < endpos && is_a(at(&cut, s + 1)) && is_t(at(&cut, s + 2)) && is_space(at(&cut, s + 3)))
        return s + 4;
    return -1;
}

/* Twin of `_OBFUSCATED_AT.search(text, pos, endpos)` (both already within the text): the first
   match's span in `*start`/`*end`; 0 when there is none. */
static int obfuscated_at(const Text *t, Py_ssize_t pos, Py_ssize_t endpos, Py_ssize_t *start, Py_ssize_t *end)
{
    for (Py_ssize_t s = pos; s < endpos; s++) {
        Py_ssize_t e = obfuscated_at_end(t, s, endpos);
        if (e >= 0) {
            *start = s;
            *end = e;
            return 1;
        }
    }
    return 0;
}

/* Whether `_OBFUSCATED_DOMAIN` may match at `i` (if not, it does not: a cheap no before calling it,
   for prose such as "look at this"). It starts with a label of 1 to 63 characters, then a dot or a
   spelled one, `\s*[\[({<]` or `\s+dot\s+` (`dot` in any case; no other letter folds onto d, o or
   t). The label ends where the run of label characters does: a shorter one is followed by a label
   character, which starts no dot; so the run must be 63 at most, followed by one of those. */
static int may_be_spelled_domain(const Text *t, Py_ssize_t i)
{
    Py_ssize_t j = i;
    while (j < t->n && j - i < 64 && is_spelled_label(at(t, j)))
        j++;
    if (j == i || j - i > 63 || j >= t->n)
        return 0;
    Py_UCS4 c = at(t, j);
    if (c == '.' || is_opener(c))
        return 1;
    if (!is_space(c))
        return 0;
    while (j < t->n && is_space(at(t, j)))
        j++;
    if (j >= t->n)
        return 0;
    return is_opener(at(t, j)) || (j + 2 < t->n && (at(t, j) | 0x20) == 'd' && (at(t, j + 1) | 0x20) == 'o' &&
                                   (at(t, j + 2) | 0x20) == 't');
}

/* Twin of `_ADDRESS_LIKE_LOCAL.search(text[start:end])`: `[._+\d]`, `\d` any decimal digit. */
static int address_like_local(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = at(t, i);
        if (c == '.' || c == '_' || c == '+' || Py_UNICODE_ISDECIMAL(c))
            return 1;
    }
    return 0;
}

/* Twin of `text[start:end].strip().lower() == "at"`: only 'A' lower-cases to 'a', only 'T' to 't'. */
static int plain_at(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    while (start < end && is_space(at(t, start)))
        start++;
    while (end > start && is_space(at(t, end - 1)))
        end--;
    return end - start == 2 && is_a(at(t, start)) && is_t(at(t, start + 1));
}

/* Twin of `_TLD.fullmatch(host.rsplit(".", 1)[-1])`: `[A-Za-z]{2,24}` after the last dot. */
static int tld_valid(PyObject *host)
{
    const Text h = {PyUnicode_KIND(host), PyUnicode_DATA(host), PyUnicode_GET_LENGTH(host)};
    Py_ssize_t start = h.n;
    while (start > 0 && at(&h, start - 1) != '.')
        start--;
    Py_ssize_t length = h.n - start;
    if (length < 2 || length > 24)
        return 0;
    for (Py_ssize_t i = start; i < h.n; i++)
        if (!is_ascii_letter(at(&h, i)))
            return 0;
    return 1;
}

/* Twin of `host.split(".")[0].lower() in _FREEMAIL`: 1, 0, or -1 with an exception set. */
static int freemail(PyObject *host)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(host);
    Py_ssize_t cut = PyUnicode_FindChar(host, '.', 0, n, 1);
    if (cut == -2)
        return -1;
    PyObject *label = PyUnicode_Substring(host, 0, cut < 0 ? n : cut);
    if (label == NULL)
        return -1;
    PyObject *lowered = PyObject_CallMethodNoArgs(label, name_lower);
    Py_DECREF(label);
    if (lowered == NULL)
        return -1;
    int found = PySequence_Contains(rules.freemail, lowered);
    Py_DECREF(lowered);
    return found;
}

/* `pattern_match(text, pos)` (a reference pattern's bound `match`): 1 with the match's end in
   `*end`, 0 when it does not match, -1 with an exception set. */
static int match_end(PyObject *pattern_match, PyObject *text, Py_ssize_t pos, Py_ssize_t *end)
{
    PyObject *where = PyLong_FromSsize_t(pos);
    if (where == NULL)
        return -1;
    PyObject *args[] = {text, where};
    PyObject *m = PyObject_Vectorcall(pattern_match, args, 2, NULL);
    Py_DECREF(where);
    if (m == NULL)
        return -1;
    if (m == Py_None) {
        Py_DECREF(m);
        return 0;
    }
    PyObject *e = PyObject_CallMethodNoArgs(m, name_end);
    Py_DECREF(m);
    if (e == NULL)
        return -1;
    *end = PyLong_AsSsize_t(e);
    Py_DECREF(e);
    return *end == -1 && PyErr_Occurred() ? -1 : 1;
}

/* `value.lower()`, taking `value`'s reference (NULL passes through). */
static PyObject *lowered(PyObject *value)
{
    if (value == NULL)
        return NULL;
    PyObject *low = PyObject_CallMethodNoArgs(value, name_lower);
    Py_DECREF(value);
    return low;
}

/* Appends the hit `(PiiClass.EMAIL, "email", start, end, value)` to `hits`, taking `value`'s
   reference (NULL: an error already set). 0, or -1 with an exception set. */
static int append_hit(PyObject *hits, Py_ssize_t start, Py_ssize_t end, PyObject *value)
{
    if (value == NULL)
        return -1;
    PyObject *hit = Py_BuildValue("(OOnnN)", rules.email, kind_email, start, end, value);
    if (hit == NULL)
        return -1;
    int failed = PyList_Append(hits, hit);
    Py_DECREF(hit);
    return failed;
}

/* --- the detector ------------------------------------------------------------------------------------ */

/* Twin of one pass of `_emails`' first loop: the plain address around the `@` at `sign`. 0, or -1
   with an exception set. */
static int plain_address(const Text *t, PyObject *text, Py_ssize_t sign, PyObject *hits)
{
    Py_ssize_t local = local_start(t, sign);
    if (local < 0 || sign + 1 >= t->n || !is_domain_first(at(t, sign + 1)))
        return 0; /* `_DOMAIN` cannot match there: spare the call */
    Py_ssize_t end;
    int found = match_end(rules.domain_match, text, sign + 1, &end);
    if (found <= 0)
        return found;
    Py_ssize_t start = local; /* `local.lstrip(".'")`: a quote is never in a local part */
    while (start < sign && at(t, start) == '.')
        start++;
    if (start >= sign)
        return 0;
    /* `f"{text[start:at]}@{domain.group()}"` is the text from `start` to the domain's end */
    return append_hit(hits, start, end, lowered(PyUnicode_Substring(text, start, end)));
}

/* `_DOT_SEPARATOR.split(text[start:end])`, a list; NULL with an exception set. */
static PyObject *domain_labels(PyObject *text, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *domain = PyUnicode_Substring(text, start, end);
    if (domain == NULL)
        return NULL;
    PyObject *labels = PyObject_CallOneArg(rules.dot_separator_split, domain);
    Py_DECREF(domain);
    if (labels != NULL && !PyList_Check(labels)) {
        Py_DECREF(labels);
        PyErr_SetString(PyExc_TypeError, "_c_emails: _DOT_SEPARATOR.split did not return a list");
        return NULL;
    }
    return labels;
}

/* `f"{text[start:end]}@{host}".lower()`; NULL with an exception set. */
static PyObject *spelled_value(PyObject *text, Py_ssize_t start, Py_ssize_t end, PyObject *host)
{
    PyObject *local = PyUnicode_Substring(text, start, end);
    if (local == NULL)
        return NULL;
    PyObject *local_at = PyUnicode_Concat(local, at_sign);
    Py_DECREF(local);
    if (local_at == NULL)
        return NULL;
    PyObject *value = PyUnicode_Concat(local_at, host);
    Py_DECREF(local_at);
    return lowered(value);
}

/* Twin of one pass of `_emails`' second loop: the address around the spelled or spaced at sign
   `text[sep_start:sep_end]`. 0, or -1 with an exception set. */
static int spelled_address(const Text *t, PyObject *text, Py_ssize_t sep_start, Py_ssize_t sep_end, PyObject *hits)
{
    while (sep_start > 0 && is_space(at(t, sep_start - 1)))
        sep_start--;
    while (sep_end < t->n && is_space(at(t, sep_end)))
        sep_end++;
    Py_ssize_t local = local_start(t, sep_start), end;
    if (local < 0 || !may_be_spelled_domain(t, sep_end))
        return 0;
    int found = match_end(rules.obfuscated_domain_match, text, sep_end, &end);
    if (found <= 0)
        return found;
    PyObject *labels = domain_labels(text, sep_end, end);
    if (labels == NULL)
        return -1;
    int spelled_dot = PyList_GET_SIZE(labels) > 1;
    PyObject *host = PyUnicode_Join(dot, labels);
    Py_DECREF(labels);
    if (host == NULL)
        return -1;
    int keep = tld_valid(host);
    if (keep && plain_at(t, sep_start, sep_end) && !spelled_dot && !address_like_local(t, local, sep_start))
        keep = freemail(host); /* "look at example.com" is prose, not an address */
    int failed = keep < 0 || (keep && append_hit(hits, local, end, spelled_value(text, local, sep_start, host)) < 0);
    Py_DECREF(host);
    return failed ? -1 : 0;
}

/* Twin of `_spelled_ats` feeding `_emails`' second loop: the spelled at signs found from each
   `_AT_CORE` match, then the spaced `@`s. 0, or -1 with an exception set. */
static int spelled_addresses(const Text *t, const Text *low, PyObject *text, PyObject *hits)
{
    Py_ssize_t (*next)(const Text *, Py_ssize_t) = low->kind == PyUnicode_1BYTE_KIND   ? next_at_core_1
                                                   : low->kind == PyUnicode_2BYTE_KIND ? next_at_core_2
                                                                                       : next_at_core_4;
    Py_ssize_t last = -1, core = -1;
    while ((core = next(low, core + 1)) >= 0) {
        Py_ssize_t pos = last + 1 > core - 2 ? last + 1 : core - 2;
        Py_ssize_t endpos = core + 4 < t->n ? core + 4 : t->n; /* `search` clamps it to the text */
        Py_ssize_t start, end;
        if (!obfuscated_at(t, pos, endpos, &start, &end))
            continue;
        last = end - 1;
        if (spelled_address(t, text, start, end, hits) < 0)
            return -1;
    }
    Py_ssize_t sign = -1;
    while ((sign = find_at_sign(text, t->n, sign + 1)) >= 0) {
        int spaced = (sign > 0 && is_space(at(t, sign - 1))) || (sign + 1 < t->n && is_space(at(t, sign + 1)));
        if (spaced && spelled_address(t, text, sign, sign + 1, hits) < 0)
            return -1;
    }
    return sign == -1 ? 0 : -1;
}

/* Twin of `_emails(text, low)`. */
static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (twin_arguments(args, nargs, rules.domain_match != NULL, "_c_emails") < 0)
        return NULL;
    PyObject *text = args[0], *low = args[1];
    const Text t = {PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)};
    const Text l = {PyUnicode_KIND(low), PyUnicode_DATA(low), PyUnicode_GET_LENGTH(low)};
    PyObject *hits = PyList_New(0);
    if (hits == NULL)
        return NULL;
    Py_ssize_t sign = -1;
    while ((sign = find_at_sign(text, t.n, sign + 1)) >= 0)
        if (plain_address(&t, text, sign, hits) < 0)
            goto failed;
    if (sign != -1 || spelled_addresses(&t, &l, text, hits) < 0)
        goto failed;
    return hits;
failed:
    Py_DECREF(hits);
    return NULL;
}

/* --- configuration ------------------------------------------------------------------------------------ */

/* What `configure` takes, as attribute paths from the detectors module, slot by slot. */
static const TakenRule taken_rules[] = {
    {"_DOMAIN.match", &rules.domain_match},
    {"_OBFUSCATED_DOMAIN.match", &rules.obfuscated_domain_match},
    {"_DOT_SEPARATOR.split", &rules.dot_separator_split},
    {"_FREEMAIL", &rules.freemail},
    {"PiiClass.EMAIL", &rules.email},
};

TWIN_MODULE(emails, "The compiled twin of detectors._emails (email addresses).");

PyMODINIT_FUNC PyInit__c_emails(void)
{
    kind_email = PyUnicode_InternFromString("email");
    name_end = PyUnicode_InternFromString("end");
    name_lower = PyUnicode_InternFromString("lower");
    dot = PyUnicode_InternFromString(".");
    at_sign = PyUnicode_InternFromString("@");
    if (kind_email == NULL || name_end == NULL || name_lower == NULL || dot == NULL || at_sign == NULL)
        return NULL;
    return PyModule_Create(&twin_module);
}
