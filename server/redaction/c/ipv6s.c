/* The compiled twin of `_ipv6s` (IPv6 addresses) in `detectors.py`.

   `scan(text, low)` returns exactly `list(detectors._ipv6s(text, low))`. The reference's cost is
   its gate (`"::" in text` and `text.count(":")`, two passes over every text) and, past it, the
   `_IPV6_COLONS` / `_IPV6` regex scan and the per-match checks in its generator. All of that is
   characters: here the gate walks from colon to colon (`memchr` in one-byte text) and stops at the
   colon that decides, the scan starts at the first colon, and `_IPV6_COLONS`, `_IPV6`, the rstrip
   of dots, the group count and the neighbour rule are C. Whether a candidate is an address, and
   its compressed form, is the reference's own `ipaddress.IPv6Address`, called from C, as is the
   `PiiClass` member.

   Every pattern mirrored here is pinned by `tests/redaction/test_c_ipv6s.py`: when the reference's
   pattern changes, that test fails until this twin follows. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "twin.h"
#include <string.h>

/* The reference's objects, taken by `configure` (strong references). */
static struct {
    PyObject *address; /* ipaddress.IPv6Address */
    PyObject *ip;      /* PiiClass.IP */
} rules;

static PyObject *kind_ipv6;       /* "ipv6" */
static PyObject *name_compressed; /* "compressed" */

/* --- characters, as the reference reads them ------------------------------------------------------ */

/* `[0-9A-Fa-f]` in a str pattern without IGNORECASE: ASCII only. */
static inline int is_hex(Py_UCS4 c) { return c - '0' < 10u || (c | 0x20) - 'a' < 6u; }

/* `[0-9A-Fa-f:.]`, the tail of `_IPV6`. */
static inline int is_address_char(Py_UCS4 c) { return is_hex(c) || c == ':' || c == '.'; }

/* `c.isascii() and c.isalnum()`. */
static inline int is_ascii_alnum(Py_UCS4 c) { return c - '0' < 10u || (c | 0x20) - 'a' < 26u; }

/* The first ':' at or after `i`, or `t->n`. Colons are what the gate and the scan walk between, so
   this is the loop that reads the whole text: `memchr` for one-byte strings, the common kind. */
static Py_ssize_t next_colon(const Text *t, Py_ssize_t i)
{
    if (i >= t->n)
        return t->n;
    if (t->kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *s = t->data;
        const Py_UCS1 *colon = memchr(s + i, ':', (size_t)(t->n - i));
        return colon == NULL ? t->n : colon - s;
    }
    if (t->kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *s = t->data;
        while (i < t->n && s[i] != ':')
            i++;
        return i;
    }
    const Py_UCS4 *s = t->data;
    while (i < t->n && s[i] != ':')
        i++;
    return i;
}

/* How many hex digits start at `i`, counting no further than `most`. */
static Py_ssize_t hex_run(const Text *t, Py_ssize_t i, Py_ssize_t most)
{
    Py_ssize_t k = 0;
    while (k < most && i + k < t->n && is_hex(at(t, i + k)))
        k++;
    return k;
}

/* --- the gate and the scan ------------------------------------------------------------------------ */

/* Twin of the gate of `_ipv6s`: whether `"::" in text or text.count(":") >= 6`. It stops at the
   colon that decides; `*first` is the text's first colon (`t->n` when it has none). */
static int may_hold_ipv6(const Text *t, Py_ssize_t *first)
{
    Py_ssize_t colons = 0, previous = -2;
    *first = next_colon(t, 0);
    for (Py_ssize_t i = *first; i < t->n; i = next_colon(t, i + 1)) {
        if (i == previous + 1 || ++colons >= 6)
            return 1;
        previous = i;
    }
    return 0;
}

/* Twin of `_IPV6_COLONS.search(text, pos).start()` (`:[0-9A-Fa-f]{0,4}:`), or -1 when none. Hex
   digits are never a colon, so the regex's backtracking over `{0,4}` finds nothing the plain run
   does not: a colon matches when a colon ends the hex run after it within four digits (after a
   fifth hex digit, the character read is that digit, not a colon). */
static Py_ssize_t colons_search(const Text *t, Py_ssize_t pos)
{
    for (Py_ssize_t p = next_colon(t, pos); p < t->n; p = next_colon(t, p + 1)) {
        Py_ssize_t after = p + 1 + hex_run(t, p + 1, 4);
        if (after < t->n && at(t, after) == ':')
            return p;
    }
    return -1;
}

/* Twin of `_IPV6.search(text, lo).start()` (`[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*`),
   `lo` being `max(pos, colon - 4)` and `colon` the `_IPV6_COLONS` match at or after `pos`. A match
   from `lo` on has its first colon at `colon`: an earlier one would have been `_IPV6_COLONS`'s
   match, a later one would leave a colon inside its first hex group. So the match starts at the
   first position from `lo` with only hex digits between it and `colon`. */
static Py_ssize_t ipv6_match_start(const Text *t, Py_ssize_t lo, Py_ssize_t colon)
{
    Py_ssize_t start = colon;
    while (start > lo && is_hex(at(t, start - 1)))
        start--;
    return start;
}

/* Twin of that `_IPV6` match's end: past the second colon (which `_IPV6_COLONS` found at most four
   hex digits after `colon`), then the greedy `[0-9A-Fa-f:.]*`, which gives nothing back. */
static Py_ssize_t ipv6_match_end(const Text *t, Py_ssize_t colon)
{
    Py_ssize_t i = colon + 1 + hex_run(t, colon + 1, 4) + 1;
    while (i < t->n && is_address_char(at(t, i)))
        i++;
    return i;
}

/* --- the checks of one candidate ---------------------------------------------------------------- */

/* `sum(1 for g in _IPV6_GROUP_SEPARATORS.split(candidate) if g) >= 3` for `text[start:end]`, which
   holds only hex digits, colons and dots: the non-empty pieces are its runs of hex digits. */
static int three_groups(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    int groups = 0, in_group = 0;
    for (Py_ssize_t i = start; i < end && groups < 3; i++) {
        int hex = is_hex(at(t, i));
        groups += hex && !in_group;
        in_group = hex;
    }
    return groups >= 3;
}

/* The neighbour rule of `_ipv6s`: `before` (a space at the text's start) is not an ASCII letter or
   digit, '_' or ':', and `after` (a space at its end) is not an ASCII letter or digit. (A ':' before
   never occurs: with at most four hex digits to the colons, it would have been `_IPV6_COLONS`'s match.
   It stays, as the reference's rule, at the cost of one comparison.) */
static int neighbours_free(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    Py_UCS4 before = start > 0 ? at(t, start - 1) : ' ';
    Py_UCS4 after = end < t->n ? at(t, end) : ' ';
    return !(is_ascii_alnum(before) || before == '_' || before == ':') && !is_ascii_alnum(after);
}

/* `ipaddress.IPv6Address(candidate).compressed` into `*value`: 1; 0 where it raises ValueError
   (the reference's `except ValueError`); -1 on any other error. */
static int compressed(PyObject *candidate, PyObject **value)
{
    /* held for the call: Python code run by it could call `configure`, which releases the rule */
    PyObject *rule = Py_NewRef(rules.address);
    PyObject *address = PyObject_CallOneArg(rule, candidate);
    Py_DECREF(rule);
    if (address == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    *value = PyObject_GetAttr(address, name_compressed);
    Py_DECREF(address);
    return *value == NULL ? -1 : 1;
}

/* Twin of one pass of the loop in `_ipv6s` after its two searches: the `_IPV6` match
   `text[start:match_end]`, dots stripped from its end, checked and, when an address, appended to
   `hits`. 0, or -1 with an exception set. (The reference's `candidate.count(":") < 2` never holds:
   the match's two colons come before any dot the rstrip removes; so it has no twin here.) */
static int ipv6_at(PyObject *text, const Text *t, Py_ssize_t start, Py_ssize_t match_end, PyObject *hits)
{
    Py_ssize_t end = match_end;
    while (end > start && at(t, end - 1) == '.')
        end--;
    if (!three_groups(t, start, end) || !neighbours_free(t, start, end))
        return 0;
    PyObject *candidate = PyUnicode_Substring(text, start, end);
    if (candidate == NULL)
        return -1;
    PyObject *value = NULL;
    int address = compressed(candidate, &value);
    Py_DECREF(candidate);
    if (address <= 0)
        return address;
    PyObject *hit = hit_tuple(rules.ip, kind_ipv6, start, end, value);
    if (hit == NULL)
        return -1;
    int failed = PyList_Append(hits, hit) < 0;
    Py_DECREF(hit);
    return failed ? -1 : 0;
}

/* --- the detector -------------------------------------------------------------------------------- */

/* Twin of `_ipv6s(text, low)`: `low` is not read, but must be the text's twin. */
static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (twin_arguments(args, nargs, rules.address != NULL, "_c_ipv6s") < 0)
        return NULL;
    PyObject *text = args[0];
    const Text t = {PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)};
    PyObject *hits = PyList_New(0);
    Py_ssize_t first, pos = 0, colon;
    if (hits == NULL || !may_hold_ipv6(&t, &first))
        return hits;
    /* no colon before the first one: the scan for `_IPV6_COLONS` may start there, the match not */
    while ((colon = colons_search(&t, Py_MAX(pos, first))) >= 0) {
        Py_ssize_t start = ipv6_match_start(&t, Py_MAX(pos, colon - 4), colon);
        pos = ipv6_match_end(&t, colon);
        if (ipv6_at(text, &t, start, pos, hits) < 0) {
            Py_DECREF(hits);
            return NULL;
        }
    }
    return hits;
}

/* --- configuration -------------------------------------------------------------------------------- */

/* What `configure` takes, as attribute paths from the detectors module, slot by slot. */
static const TakenRule taken_rules[] = {
    {"ipaddress.IPv6Address", &rules.address},
    {"PiiClass.IP", &rules.ip},
};

TWIN_MODULE(ipv6s, "The compiled twin of detectors._ipv6s (IPv6 addresses).");

PyMODINIT_FUNC PyInit__c_ipv6s(void)
{
    kind_ipv6 = PyUnicode_InternFromString("ipv6");
    name_compressed = PyUnicode_InternFromString("compressed");
    if (kind_ipv6 == NULL || name_compressed == NULL)
        return NULL;
    return PyModule_Create(&twin_module);
}
