/* The compiled twin of `_numbers` in detectors.py: cards, SSNs, phones, and the IPv4 addresses
 * inside the same digit runs.
 *
 * C does what the reference does character by character: the `_RUN` scan, the `_IPV4` matches
 * inside runs, the trailing trim, `_split_run`/`_splits`, the glue rules, the shapes and the
 * numbering rules of `_number`, `_classify` and `_phone`. Every rule that needs more than
 * characters is the reference's own Python object, called on the rare candidate: `card_brand_plausible`,
 * `ssn_valid`, `country_code`, `_Context` (built exactly where the reference builds one, so it
 * stays lazy), the context patterns and the `PiiClass` members. `configure(detectors)` hands them
 * over; `scan(text, low)` returns `list(detectors._numbers(text, low))`.
 *
 * The text may be any str (any kind, any length): every read goes through `PyUnicode_READ` at an
 * index checked against the length, and scratch memory grows with the run, never fixed-size.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

/* --- the reference's objects ---------------------------------------------------------------- */

/* Borrowed from `owner`, a tuple holding one strong reference to each. A scan copies the struct
 * and holds `owner`, so a `configure` run by Python code it calls back cannot free them under it. */
typedef struct {
    PyObject *owner;
    PyObject *card_brand_plausible, *ssn_valid, *country_code, *context;
    PyObject *ssn_context, *phone_context, *not_phone_search, *version_search;
    PyObject *before_number, *after_number; /* the frozensets `_BEFORE_NUMBER`, `_AFTER_NUMBER` */
    PyObject *card, *national_id, *phone, *ip; /* PiiClass members */
    unsigned char before_ascii[128], after_ascii[128]; /* the two sets' ASCII members, as a table */
} Rules;

#define RULES 14 /* the objects in a `Rules` */

static Rules rules; /* the latest configure's */
static PyObject *kind_card, *kind_ssn, *kind_phone, *kind_ipv4, *name_before, *name_has, *name_lower;

/* The patterns this file implements by hand. `configure` refuses a reference whose patterns
 * differ: the twin would no longer find what the reference finds. */
static const struct {
    const char *name, *pattern;
} ported[] = {
    {"_RUN", "[+(0-9](?<![+(0-9][+(0-9])[0-9 \\-.()+/]{6,}"},
    {"_IPV4", "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"},
    {"_SENTENCE_END", "\\.\\s"},
    {"_GROUP_SPLIT", "(\\d+)"},
};

/* --- the text -------------------------------------------------------------------------------- */

/* One scan: the text, and the rules it runs with (its own copy: see `Rules`). */
typedef struct {
    PyObject *obj;
    int kind;
    const void *data;
    Py_ssize_t len;
    const Rules *rules;
} Text;

/* text[i], or `outside` when i is not in [0, len) (Python's clamped one-character slice). */
static Py_UCS4 char_at(const Text *t, Py_ssize_t i, Py_UCS4 outside)
{
    return (i >= 0 && i < t->len) ? PyUnicode_READ(t->kind, t->data, i) : outside;
}

static int is_ascii_digit(Py_UCS4 c)
{
    return c >= '0' && c <= '9';
}

/* `[+(0-9]`: what a run starts with. */
static int run_start_char(Py_UCS4 c)
{
    return is_ascii_digit(c) || c == '+' || c == '(';
}

/* `[0-9 \-.()+/]`: what a run is made of. */
static int run_char(Py_UCS4 c)
{
    return is_ascii_digit(c) || c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '+' || c == '/';
}

/* `c in charset` for a frozenset of one-character strings: a table for ASCII, the set itself for
 * the rest (non-ASCII neighbours are rare). -1 on error. */
static int in_set(PyObject *set, const unsigned char *ascii, Py_UCS4 c)
{
    if (c < 128)
        return ascii[c];
    PyObject *s = PyUnicode_FromOrdinal((int)c);
    if (s == NULL)
        return -1;
    int found = PySet_Contains(set, s);
    Py_DECREF(s);
    return found;
}

/* --- scratch memory, grown to the longest run of a scan ------------------------------------------- */

typedef struct {
    Py_ssize_t start, end; /* a digit group: text[start:end] */
} Group;

typedef struct {
    Py_ssize_t start;       /* the segment's start (`seg_start`) */
    Py_ssize_t first, count; /* its groups: groups[first:first + count] */
} Segment;

typedef struct {
    Group *groups;
    Segment *segments;
    char *digits;
    Py_ssize_t n_groups, n_segments, capacity;
} Scratch;

/* `block` resized to `count` items of `size` bytes, or NULL with MemoryError set (and `block`
 * left as it was). */
static void *resized(void *block, Py_ssize_t count, size_t size)
{
    void *bigger = (size_t)count > (size_t)PY_SSIZE_T_MAX / size ? NULL : PyMem_Realloc(block, (size_t)count * size);
    if (bigger == NULL)
        PyErr_NoMemory();
    return bigger;
}

/* Room for a run of `length` characters: at most `length` groups, segments and digits. */
static int reserve(Scratch *s, Py_ssize_t length)
{
    if (length <= s->capacity)
        return 0;
    Group *groups = resized(s->groups, length, sizeof(Group));
    if (groups == NULL)
        return -1;
    s->groups = groups;
    Segment *segments = resized(s->segments, length, sizeof(Segment));
    if (segments == NULL)
        return -1;
    s->segments = segments;
    char *digits = resized(s->digits, length, 1);
    if (digits == NULL)
        return -1;
    s->digits = digits;
    s->capacity = length;
    return 0;
}

static void release(Scratch *s)
{
    PyMem_Free(s->groups);
    PyMem_Free(s->segments);
    PyMem_Free(s->digits);
}

/* --- small Python helpers ------------------------------------------------------------------------ */

/* An ASCII str: `prefix` (0 for none) then chars[0:n]. */
static PyObject *ascii_str(char prefix, const char *chars, Py_ssize_t n)
{
    Py_ssize_t extra = prefix ? 1 : 0;
    PyObject *s = PyUnicode_New(n + extra, 127);
    if (s == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    if (prefix)
        out[0] = (Py_UCS1)prefix;
    memcpy(out + extra, chars, (size_t)n);
    return s;
}

/* bool(function(arg)), stealing `arg`; -1 on error. */
static int call_truth(PyObject *function, PyObject *arg)
{
    if (arg == NULL)
        return -1;
    PyObject *result = PyObject_CallOneArg(function, arg);
    Py_DECREF(arg);
    if (result == NULL)
        return -1;
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* `_Context(text, start, end)`. */
static PyObject *new_context(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    return PyObject_CallFunction(t->rules->context, "Onn", t->obj, start, end);
}

/* `context.has(pattern)`; -1 on error. */
static int context_has(PyObject *context, PyObject *pattern)
{
    PyObject *result = PyObject_CallMethodOneArg(context, name_has, pattern);
    if (result == NULL)
        return -1;
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* Appends the hit (cls, kind, start, end, value), stealing `value`. */
static int append_hit(PyObject *out, PyObject *cls, PyObject *kind, Py_ssize_t start, Py_ssize_t end, PyObject *value)
{
    if (value == NULL)
        return -1;
    PyObject *hit = PyTuple_New(5);
    PyObject *start_obj = PyLong_FromSsize_t(start);
    PyObject *end_obj = PyLong_FromSsize_t(end);
    if (hit == NULL || start_obj == NULL || end_obj == NULL) {
        Py_XDECREF(hit);
        Py_XDECREF(start_obj);
        Py_XDECREF(end_obj);
        Py_DECREF(value);
        return -1;
    }
    Py_INCREF(cls);
    Py_INCREF(kind);
    PyTuple_SET_ITEM(hit, 0, cls);
    PyTuple_SET_ITEM(hit, 1, kind);
    PyTuple_SET_ITEM(hit, 2, start_obj);
    PyTuple_SET_ITEM(hit, 3, end_obj);
    PyTuple_SET_ITEM(hit, 4, value);
    int failed = PyList_Append(out, hit);
    Py_DECREF(hit);
    return failed;
}

/* --- IPv4 inside runs (`_ipv4s`) ------------------------------------------------------------------- */

/* The end of an `_IPV4` match at `p` in text[:hi], or -1. Each octet is a greedy `[0-9]{1,3}`, the
 * first three followed by a dot: backtracking to a shorter octet puts a digit where the dot must
 * be, so it never finds another match. */
static Py_ssize_t ipv4_match(const Text *t, Py_ssize_t p, Py_ssize_t hi)
{
    for (int octet = 0;; octet++) {
        Py_ssize_t digits = 0;
        while (digits < 3 && p + digits < hi && is_ascii_digit(char_at(t, p + digits, 0)))
            digits++;
        if (digits == 0)
            return -1;
        if (octet == 3)
            return p + digits;
        if (p + digits >= hi || char_at(t, p + digits, 0) != '.')
            return -1;
        p += digits + 1;
    }
}

/* `ipv4_valid` (checks.py) of text[start:end], an `_IPV4` match: each octet at most 255, no leading zero. */
static int ipv4_valid(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t p = start;
    while (p < end) {
        Py_ssize_t q = p;
        int value = 0;
        while (q < end && char_at(t, q, 0) != '.')
            value = value * 10 + (int)(char_at(t, q++, 0) - '0');
        if (value > 255 || (char_at(t, p, 0) == '0' && q - p > 1))
            return 0;
        p = q + 1;
    }
    return 1;
}

/* Whether `_VERSION_CONTEXT` finds a version word in the 16 lower-cased characters before `start`. */
static int version_before(const Text *t, Py_ssize_t start)
{
    PyObject *before = PyUnicode_Substring(t->obj, start > 16 ? start - 16 : 0, start);
    if (before == NULL)
        return -1;
    PyObject *lowered = PyObject_CallMethodNoArgs(before, name_lower);
    Py_DECREF(before);
    return call_truth(t->rules->version_search, lowered);
}

/* Whether the `_IPV4` match text[start:end] is an address (`_ipv4s`'s checks). `ipv4_valid` is
 * asked before the version context: both only say no, and it is the one without a Python call. */
static int ipv4_address(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    Py_UCS4 before = char_at(t, start - 1, ' ');
    Py_UCS4 after = char_at(t, end, 0);
    if (before < 128 && (Py_UNICODE_ISALNUM(before) || before == '.' || before == '_'))
        return 0;
    if (end < t->len && after < 128 && Py_UNICODE_ISALNUM(after))
        return 0;
    if (end < t->len && after == '.' && end + 1 < t->len && Py_UNICODE_ISDIGIT(char_at(t, end + 1, 0)))
        return 0;
    if (!ipv4_valid(t, start, end))
        return 0;
    int version = version_before(t, start);
    return version < 0 ? -1 : !version;
}

/* `_ipv4s(text, lo, hi)`: `_IPV4.finditer(text, lo, hi)`, each match checked. */
static int ipv4s(const Text *t, Py_ssize_t lo, Py_ssize_t hi, PyObject *out)
{
    Py_ssize_t p = lo;
    while (p < hi) {
        Py_ssize_t end = ipv4_match(t, p, hi);
        if (end < 0) {
            p++;
            continue;
        }
        int address = ipv4_address(t, p, end);
        if (address < 0)
            return -1;
        if (address && append_hit(out, t->rules->ip, kind_ipv4, p, end, PyUnicode_Substring(t->obj, p, end)) < 0)
            return -1;
        p = end;
    }
    return 0;
}

/* --- runs and segments (`_RUN`, `_split_run`, `_splits`) -------------------------------------------- */

/* The first index from p where a run may start (`[+(0-9]`), or the length. This loop reads every
 * character of the text: the 1-byte kind (most texts) is read without `PyUnicode_READ`'s switch. */
static Py_ssize_t next_start_char(const Text *t, Py_ssize_t p)
{
    if (t->kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *data = t->data;
        while (p < t->len && !run_start_char(data[p]))
            p++;
        return p;
    }
    while (p < t->len && !run_start_char(char_at(t, p, 0)))
        p++;
    return p;
}

/* The next `_RUN` match at or after *pos: [*start, *end). 0 when there is none. A run starts at a
 * `[+(0-9]` not preceded by one (the lookbehind) and takes every run character after it, greedily;
 * it needs six of them. A failed try reads at most seven characters, so the scan stays linear. */
static int next_run(const Text *t, Py_ssize_t *pos, Py_ssize_t *start, Py_ssize_t *end)
{
    for (Py_ssize_t p = next_start_char(t, *pos); p < t->len; p = next_start_char(t, p + 1)) {
        if (p > 0 && run_start_char(char_at(t, p - 1, 0)))
            continue;
        Py_ssize_t q = p + 1;
        while (q < t->len && run_char(char_at(t, q, 0)))
            q++;
        if (q - p - 1 >= 6) {
            *start = p;
            *end = q;
            *pos = q;
            return 1;
        }
    }
    return 0;
}

/* `_splits(text[a:b])`: the separator between two groups cannot sit inside one number. */
static int splits(const Text *t, Py_ssize_t a, Py_ssize_t b)
{
    if (b - a == 1)
        return char_at(t, a, 0) == '+';
    Py_ssize_t not_parens = 0;
    for (Py_ssize_t i = a; i < b; i++) {
        Py_UCS4 c = char_at(t, i, 0);
        if (c == '+' || c == '/' || (c == '.' && i + 1 < b && char_at(t, i + 1, 0) == '.'))
            return 1;
        not_parens += c != '(' && c != ')';
    }
    if (not_parens > 3)
        return 1;
    return b - a >= 2 && char_at(t, a, 0) == '.' && Py_UNICODE_ISSPACE(char_at(t, a + 1, 0)); /* `_SENTENCE_END` */
}

/* `_split_run(text, start, end)` into s->groups and s->segments. The run holds only ASCII
 * characters, so `\d+` groups are its maximal runs of `[0-9]`. */
static int split_run(const Text *t, Py_ssize_t start, Py_ssize_t end, Scratch *s)
{
    if (reserve(s, end - start) < 0)
        return -1;
    s->n_groups = s->n_segments = 0;
    Py_ssize_t seg_start = start, first = 0;
    Py_ssize_t p = start;
    while (p < end) {
        if (!is_ascii_digit(char_at(t, p, 0))) {
            p++;
            continue;
        }
        Py_ssize_t q = p;
        while (q < end && is_ascii_digit(char_at(t, q, 0)))
            q++;
        Py_ssize_t g = s->n_groups;
        if (g > first && splits(t, s->groups[g - 1].end, p)) {
            s->segments[s->n_segments++] = (Segment){seg_start, first, g - first};
            seg_start = s->groups[g - 1].end;
            first = g;
        }
        s->groups[s->n_groups++] = (Group){p, q};
        p = q;
    }
    if (s->n_groups > first)
        s->segments[s->n_segments++] = (Segment){seg_start, first, s->n_groups - first};
    return 0;
}

/* --- one segment (`_number`, `_classify`, `_phone`, `_looks_like_date`) ------------------------------ */

typedef struct {
    const Text *t;
    const Group *groups;
    Py_ssize_t n_groups;
    const char *digits; /* the groups' digits, joined */
    Py_ssize_t n;
    int plus, paren;
    Py_ssize_t start, end; /* the number: text[start:end] */
    PyObject *digits_str;  /* `digits` as a str, built when first needed */
} Candidate;

static Py_ssize_t shape_at(const Candidate *c, Py_ssize_t i)
{
    return c->groups[i].end - c->groups[i].start;
}

/* `shape == want` */
static int shape_is(const Candidate *c, const int *want, Py_ssize_t n_want)
{
    if (c->n_groups != n_want)
        return 0;
    for (Py_ssize_t i = 0; i < n_want; i++)
        if (shape_at(c, i) != want[i])
            return 0;
    return 1;
}

#define SHAPE_IS(c, ...) \
    shape_is((c), (const int[]){__VA_ARGS__}, (Py_ssize_t)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))

/* `digits` as a str: a new reference. */
static PyObject *digits_str(Candidate *c)
{
    if (c->digits_str == NULL)
        c->digits_str = ascii_str(0, c->digits, c->n);
    Py_XINCREF(c->digits_str);
    return c->digits_str;
}

/* `int(groups[i][0])`, saturated at 1000: the rules compare it with numbers up to 31 only. */
static int group_value(const Candidate *c, Py_ssize_t i)
{
    int value = 0;
    for (Py_ssize_t p = c->groups[i].start; p < c->groups[i].end; p++) {
        value = value * 10 + (int)(char_at(c->t, p, '0') - '0');
        if (value > 1000)
            value = 1000;
    }
    return value;
}

/* `_looks_like_date(groups)` */
static int looks_like_date(const Candidate *c)
{
    if (c->n_groups < 3)
        return 0;
    int a = group_value(c, 0), b = group_value(c, 1), d = group_value(c, 2);
    if (shape_at(c, 0) == 4) /* 2024-03-15 */
        return 1 <= b && b <= 12 && 1 <= d && d <= 31;
    if (shape_at(c, 2) == 4) /* 15.03.2024 or 03/15/2024 */
        return (1 <= a && a <= 31 && 1 <= b && b <= 12) || (1 <= a && a <= 12 && 1 <= b && b <= 31);
    return 0;
}

/* `d in "23456789"` */
static int nanp_digit(char d)
{
    return d >= '2' && d <= '9';
}

/* `"+" + digits[from:] if country_code(digits[from:]) and low <= n <= high`. The length is read
 * first: both are pure checks, and it is the one without a Python call. 1 with *value set, 0, -1. */
static int international(Candidate *c, Py_ssize_t from, Py_ssize_t low, Py_ssize_t high, PyObject **value)
{
    if (c->n < low || c->n > high)
        return 0;
    int known = call_truth(c->t->rules->country_code, ascii_str(0, c->digits + from, c->n - from));
    if (known <= 0)
        return known;
    *value = ascii_str('+', c->digits + from, c->n - from);
    return *value == NULL ? -1 : 1;
}

/* `_NOT_PHONE_CONTEXT.search(context.before[-24:])`, as a truth; -1 on error. */
static int reference_before(const Candidate *c, PyObject *context)
{
    PyObject *before = PyObject_GetAttr(context, name_before);
    if (before == NULL)
        return -1;
    PyObject *tail = PySequence_GetSlice(before, -24, PY_SSIZE_T_MAX); /* a slice object: -24 is Python's */
    Py_DECREF(before);
    return call_truth(c->t->rules->not_phone_search, tail);
}

/* `context.has(_PHONE_CONTEXT)` */
static int phone_context(const Candidate *c, PyObject *context)
{
    return context_has(context, c->t->rules->phone_context);
}

/* The rules of `_phone` after the reference check, in its order. 1 when the digits are a phone,
 * 0, -1. */
static int national_phone(const Candidate *c, PyObject *context)
{
    const char *d = c->digits;
    Py_ssize_t n = c->n;
    int separated = c->n_groups > 1;
    int nanp = (SHAPE_IS(c, 3, 3, 4) || SHAPE_IS(c, 1, 3, 3, 4)) && (shape_at(c, 0) == 3 || d[0] == '1');
    const char *national = (n == 11 && d[0] == '1') ? d + 1 : d;
    Py_ssize_t n_national = (n == 11 && d[0] == '1') ? n - 1 : n;
    if (nanp && nanp_digit(d[n - 10]) && nanp_digit(d[n - 7]))
        return 1;
    if (c->paren && 10 <= n && n <= 12)
        return 1;
    if (d[0] == '0' && 10 <= n && n <= 12) {
        int said = separated || d[1] == '7' ? 1 : phone_context(c, context);
        if (said != 0)
            return said;
    }
    Py_ssize_t widest = 0;
    for (Py_ssize_t i = 0; i < c->n_groups; i++)
        widest = shape_at(c, i) > widest ? shape_at(c, i) : widest;
    int grouped = c->n_groups >= 3 && widest <= 3; /* 24 17 29 82 83, 6 6 3 0 4 0 6 3 3 */
    if (grouped && n_national == 10 && nanp_digit(national[0]) && nanp_digit(national[3]))
        return 1; /* North American */
    if (n == 9 && d[0] >= '6' && d[0] <= '9' && (grouped || SHAPE_IS(c, 3, 3, 3)))
        return 1; /* Spain: 612 34 56 78 */
    if (n == 10 && d[0] == '3' && (SHAPE_IS(c, 3, 3, 4) || SHAPE_IS(c, 3, 7) || SHAPE_IS(c, 3, 4, 3)))
        return 1; /* Italian mobiles */
    if (7 <= n && n <= 12)
        return phone_context(c, context); /* read last: most numbers are decided before */
    return 0;
}

/* `_phone` from its context on. 1 with *value set, 0, -1. */
static int phone_in_context(Candidate *c, PyObject *context, PyObject **value)
{
    int reference = reference_before(c, context);
    if (reference != 0)
        return reference < 0 ? -1 : 0;
    if (c->digits[0] == '0' && c->digits[1] == '0')
        return international(c, 2, 10, 17, value);
    int is_phone = national_phone(c, context);
    if (is_phone <= 0)
        return is_phone;
    *value = digits_str(c);
    return *value == NULL ? -1 : 1;
}

/* `_phone`: 1 with *value (the canonical number) set, 0, -1. */
static int phone(Candidate *c, PyObject **value)
{
    Py_ssize_t n = c->n;
    if (c->plus)
        return international(c, 0, 8, 15, value);
    if (n < 7 || n > 17 || (n > 12 && !(c->digits[0] == '0' && c->digits[1] == '0')))
        return 0; /* no rule below takes it: spare reading the context */
    if (SHAPE_IS(c, 3, 2, 4) || looks_like_date(c))
        return 0; /* 3-2-4 is how SSNs are written (an invalid one is still not a phone) */
    PyObject *context = new_context(c->t, c->start, c->end);
    if (context == NULL)
        return -1;
    int result = phone_in_context(c, context, value);
    Py_DECREF(context);
    return result;
}

/* `luhn_valid(digits[:n])` of checks.py */
static int luhn_valid(const char *digits, Py_ssize_t n)
{
    int total = 0;
    for (Py_ssize_t index = 0; index < n; index++) {
        int value = digits[n - 1 - index] - '0';
        if (index % 2)
            value = value > 4 ? value * 2 - 9 : value * 2;
        total = (total + value) % 10;
    }
    return total == 0;
}

/* `card_valid(digits[:n])` of checks.py: `13 <= len(digits) <= 19 and card_brand_plausible(digits) and
 * luhn_valid(digits)`. The length and Luhn are characters, read here (most candidates, order and
 * tracking numbers, fail Luhn); the issuer ranges are the reference's rule, asked last. (Both only say
 * no, so the order changes nothing; `test_c_numbers.py` pins `card_valid`'s source.) */
static int card_valid(Candidate *c, Py_ssize_t n)
{
    if (n < 13 || n > 19 || !luhn_valid(c->digits, n))
        return 0;
    return call_truth(c->t->rules->card_brand_plausible, n == c->n ? digits_str(c) : ascii_str(0, c->digits, n));
}

/* `ssn_valid(digits) and (shape == [3, 2, 4] or _Context(...).has(_SSN_CONTEXT))` */
static int ssn(Candidate *c)
{
    int valid = call_truth(c->t->rules->ssn_valid, digits_str(c));
    if (valid <= 0 || SHAPE_IS(c, 3, 2, 4))
        return valid;
    PyObject *context = new_context(c->t, c->start, c->end);
    if (context == NULL)
        return -1;
    int said = context_has(context, c->t->rules->ssn_context);
    Py_DECREF(context);
    return said;
}

/* `_classify`: 1 with *cls, *kind and *value (a new reference) set, 0, -1. */
static int classify(Candidate *c, PyObject **cls, PyObject **kind, PyObject **value)
{
    const Rules *r = c->t->rules;
    int is;
    if (!c->plus && c->n >= 13 && (is = card_valid(c, c->n)) != 0) { /* card_valid starts with 13 <= length */
        *cls = r->card, *kind = kind_card;
        *value = is > 0 ? digits_str(c) : NULL;
        return *value == NULL ? -1 : 1;
    }
    if (!c->plus && c->n == 9 && (is = ssn(c)) != 0) {
        *cls = r->national_id, *kind = kind_ssn;
        *value = is > 0 ? digits_str(c) : NULL;
        return *value == NULL ? -1 : 1;
    }
    *cls = r->phone, *kind = kind_phone;
    return phone(c, value);
}

/* The end of `_number`: a card followed by a short tail the run swallowed, an expiry date
 * ("12/26") or a CVV ("123"). Appends the card if there is one; -1 on error. */
static int card_before_tail(Candidate *c, PyObject *out)
{
    Py_ssize_t tail = 0;
    for (Py_ssize_t j = c->n_groups - 1; j > 0; j--) {
        tail += shape_at(c, j);
        if (tail > 8)
            break;
        int valid = card_valid(c, c->n - tail);
        if (valid != 0)
            return valid < 0 ? -1
                             : append_hit(out, c->t->rules->card, kind_card, c->start, c->groups[j - 1].end,
                                          ascii_str(0, c->digits, c->n - tail));
    }
    return 0;
}

/* Where `_number` says the number starts: at its `(` when the first group is closed by `)`
 * ((415) 555-2671), at its `+`, or at its first digit. Sets c->plus, c->paren and c->start. */
static void number_start(Candidate *c, Py_ssize_t seg_start)
{
    Py_ssize_t first_start = c->groups[0].start, first_end = c->groups[0].end;
    Py_ssize_t plus_at = -1, paren_at = -1;
    for (Py_ssize_t p = seg_start; p < first_start; p++) { /* `rfind` of each, between the two */
        Py_UCS4 ch = char_at(c->t, p, 0);
        plus_at = ch == '+' ? p : plus_at;
        paren_at = ch == '(' ? p : paren_at;
    }
    c->paren = paren_at != -1 && c->n_groups > 1 && char_at(c->t, first_end, 0) == ')';
    c->plus = plus_at != -1;
    c->start = c->paren ? paren_at : c->plus ? plus_at : first_start;
}

/* `_number(text, seg_start, groups)`: appends its hit, if any; -1 on error. */
static int number(const Text *t, const Segment *seg, Scratch *s, PyObject *out)
{
    const Group *groups = s->groups + seg->first;
    Candidate c = {t, groups, seg->count, s->digits, 0, 0, 0, 0, 0, NULL};
    for (Py_ssize_t i = 0; i < seg->count; i++)
        for (Py_ssize_t p = groups[i].start; p < groups[i].end; p++)
            s->digits[c.n++] = (char)char_at(t, p, '0');
    if (c.n < 7)
        return 0; /* shorter than any card, SSN or phone: spare the rules */
    number_start(&c, seg->start);
    c.end = groups[seg->count - 1].end;
    PyObject *cls, *kind, *value = NULL;
    int result = classify(&c, &cls, &kind, &value);
    if (result > 0)
        result = append_hit(out, cls, kind, c.start, c.end, value);
    else if (result == 0 && !c.plus && c.n >= 14) /* a card and a tail of at least one digit: 13 + 1 */
        result = card_before_tail(&c, out);
    Py_XDECREF(c.digits_str);
    return result < 0 ? -1 : 0;
}

/* --- the scan (`_numbers`) ------------------------------------------------------------------------- */

/* `in_time`: the run follows `:` after two digits (10:30:01.000-0500). */
static int in_time(const Text *t, Py_ssize_t start)
{
    if (char_at(t, start - 1, ' ') != ':')
        return 0;
    Py_ssize_t from = start > 3 ? start - 3 : 0; /* text[max(0, start - 3):start - 1].isdigit() */
    if (from >= start - 1)
        return 0;
    for (Py_ssize_t i = from; i < start - 1; i++)
        if (!Py_UNICODE_ISDIGIT(char_at(t, i, 0)))
            return 0;
    return 1;
}

/* The glue rules of `_numbers` on the segments of the run text[start:end] (end trimmed). */
static int glue(const Text *t, Py_ssize_t start, Py_ssize_t end, Scratch *s)
{
    Py_UCS4 before = char_at(t, start - 1, ' ');
    int timed = in_time(t, start);
    int glued = timed ? 1 : in_set(t->rules->before_number, t->rules->before_ascii, before);
    if (glued < 0)
        return -1;
    if (glued) {
        /* Glued to a code (ES31 2536...) or a time: that segment is part of it. Glued to an id by a
         * dash or a dot (O-5531 020 7946 0958): only the first group is. */
        Segment *first = &s->segments[0];
        if (before < 128 && !Py_UNICODE_ISALNUM(before) && !timed)
            *first = (Segment){s->groups[first->first].end, first->first + 1, first->count - 1};
        else
            *first = (Segment){0, first->first, 0};
    }
    if (end < t->len) {
        int after = in_set(t->rules->after_number, t->rules->after_ascii, char_at(t, end, 0));
        if (after < 0)
            return -1;
        s->n_segments -= after; /* glued to a word on the right: the last segment is part of it */
    }
    return 0;
}

/* One `_RUN` match text[start:end]: its addresses, then its numbers. */
static int run_hits(const Text *t, Py_ssize_t start, Py_ssize_t end, Scratch *s, PyObject *out)
{
    Py_ssize_t dots = 0;
    for (Py_ssize_t i = start; i < end; i++)
        dots += char_at(t, i, 0) == '.';
    if (dots >= 3 && ipv4s(t, start, end, out) < 0)
        return -1;
    while (end > start && !is_ascii_digit(char_at(t, end - 1, 0)))
        end--;
    if (split_run(t, start, end, s) < 0)
        return -1;
    if (s->n_segments == 0)
        return 0;
    if (glue(t, start, end, s) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < s->n_segments; i++)
        if (s->segments[i].count > 0 && number(t, &s->segments[i], s, out) < 0)
            return -1;
    return 0;
}

/* scan(text, low) -> list: `list(_numbers(text, low))`. */
static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "scan() takes 2 arguments (text, low), %zd given", nargs);
        return NULL;
    }
    if (!PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "scan() takes two str");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(args[0]) < 0 || PyUnicode_READY(args[1]) < 0) /* a legacy string of the old C API */
        return NULL;
#endif
    if (PyUnicode_GET_LENGTH(args[1]) != PyUnicode_GET_LENGTH(args[0])) {
        PyErr_SetString(PyExc_ValueError, "scan(): low must be as long as text");
        return NULL;
    }
    if (rules.owner == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure(detectors) first");
        return NULL;
    }
    Rules own = rules; /* borrowed from own.owner, which this scan holds (see `Rules`) */
    Py_INCREF(own.owner);
    Text t = {args[0], PyUnicode_KIND(args[0]), PyUnicode_DATA(args[0]), PyUnicode_GET_LENGTH(args[0]), &own};
    PyObject *out = PyList_New(0);
    Scratch s = {0};
    Py_ssize_t pos = 0, start, end;
    int failed = out == NULL;
    while (!failed && next_run(&t, &pos, &start, &end))
        failed = run_hits(&t, start, end, &s, out) < 0;
    release(&s);
    Py_DECREF(own.owner);
    if (failed) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

/* --- configure ------------------------------------------------------------------------------------- */

/* `getattr(source, name)` into the tuple `owner` at *at, borrowed into *slot. */
static int take(PyObject *owner, Py_ssize_t *at, PyObject *source, const char *name, PyObject **slot)
{
    if (*at >= PyTuple_GET_SIZE(owner)) {
        PyErr_SetString(PyExc_SystemError, "_c_numbers: more rules than RULES");
        return -1;
    }
    PyObject *value = PyObject_GetAttrString(source, name);
    if (value == NULL)
        return -1;
    PyTuple_SET_ITEM(owner, (*at)++, value);
    *slot = value;
    return 0;
}

/* The ASCII members of a frozenset of one-character strings, as a table. */
static int ascii_members(PyObject *set, unsigned char *table, const char *name)
{
    if (!PyFrozenSet_Check(set)) {
        PyErr_Format(PyExc_TypeError, "detectors.%s is not a frozenset", name);
        return -1;
    }
    for (int c = 0; c < 128; c++) {
        PyObject *s = PyUnicode_FromOrdinal(c);
        int found = s == NULL ? -1 : PySet_Contains(set, s);
        Py_XDECREF(s);
        if (found < 0)
            return -1;
        table[c] = (unsigned char)found;
    }
    return 0;
}

/* Refuses a reference whose patterns are not the ones this file implements. */
static int check_ported(PyObject *module)
{
    for (size_t i = 0; i < sizeof ported / sizeof ported[0]; i++) {
        PyObject *compiled = PyObject_GetAttrString(module, ported[i].name);
        PyObject *pattern = compiled == NULL ? NULL : PyObject_GetAttrString(compiled, "pattern");
        Py_XDECREF(compiled);
        if (pattern == NULL)
            return -1;
        int same = PyUnicode_Check(pattern) && PyUnicode_CompareWithASCIIString(pattern, ported[i].pattern) == 0;
        Py_DECREF(pattern);
        if (!same) {
            PyErr_Format(PyExc_RuntimeError, "detectors.%s is not the pattern _c_numbers was written for: rebuild the twin",
                         ported[i].name);
            return -1;
        }
    }
    return 0;
}

/* The objects of `Rules` from the reference module, owned by fresh->owner. */
static int take_rules(PyObject *module, Rules *fresh)
{
    Py_ssize_t at = 0;
    fresh->owner = PyTuple_New(RULES);
    if (fresh->owner == NULL)
        return -1;
    PyObject *o = fresh->owner, *not_phone = NULL, *version = NULL, *classes = NULL;
    int failed = take(o, &at, module, "card_brand_plausible", &fresh->card_brand_plausible) < 0
                 || take(o, &at, module, "ssn_valid", &fresh->ssn_valid) < 0
                 || take(o, &at, module, "country_code", &fresh->country_code) < 0
                 || take(o, &at, module, "_Context", &fresh->context) < 0
                 || take(o, &at, module, "_SSN_CONTEXT", &fresh->ssn_context) < 0
                 || take(o, &at, module, "_PHONE_CONTEXT", &fresh->phone_context) < 0
                 || take(o, &at, module, "_BEFORE_NUMBER", &fresh->before_number) < 0
                 || take(o, &at, module, "_AFTER_NUMBER", &fresh->after_number) < 0
                 || (not_phone = PyObject_GetAttrString(module, "_NOT_PHONE_CONTEXT")) == NULL
                 || take(o, &at, not_phone, "search", &fresh->not_phone_search) < 0
                 || (version = PyObject_GetAttrString(module, "_VERSION_CONTEXT")) == NULL
                 || take(o, &at, version, "search", &fresh->version_search) < 0
                 || (classes = PyObject_GetAttrString(module, "PiiClass")) == NULL
                 || take(o, &at, classes, "CARD", &fresh->card) < 0
                 || take(o, &at, classes, "NATIONAL_ID", &fresh->national_id) < 0
                 || take(o, &at, classes, "PHONE", &fresh->phone) < 0
                 || take(o, &at, classes, "IP", &fresh->ip) < 0
                 || ascii_members(fresh->before_number, fresh->before_ascii, "_BEFORE_NUMBER") < 0
                 || ascii_members(fresh->after_number, fresh->after_ascii, "_AFTER_NUMBER") < 0;
    Py_XDECREF(not_phone);
    Py_XDECREF(version);
    Py_XDECREF(classes);
    return failed ? -1 : 0;
}

/* configure(detectors): take the reference's rules (again, when called again). */
static PyObject *configure(PyObject *self, PyObject *module)
{
    (void)self;
    Rules fresh = {0};
    if (check_ported(module) < 0 || take_rules(module, &fresh) < 0) {
        Py_XDECREF(fresh.owner);
        return NULL;
    }
    PyObject *previous = rules.owner;
    rules = fresh;
    Py_XDECREF(previous);
    Py_RETURN_NONE;
}

/* --- the module ------------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"configure", configure, METH_O, "configure(detectors): take the rules from the reference module."},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(text, low) -> list: exactly list(detectors._numbers(text, low))."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef numbers_module = {
    PyModuleDef_HEAD_INIT, "_c_numbers", "The compiled twin of detectors._numbers.", -1, methods,
    NULL, NULL, NULL, NULL,
};

static PyObject **const interned[] = {&kind_card, &kind_ssn, &kind_phone, &kind_ipv4, &name_before, &name_has, &name_lower};
static const char *const interned_text[] = {"card", "ssn", "phone", "ipv4", "before", "has", "lower"};

PyMODINIT_FUNC PyInit__c_numbers(void)
{
    for (size_t i = 0; i < sizeof interned / sizeof interned[0]; i++)
        if (*interned[i] == NULL && (*interned[i] = PyUnicode_InternFromString(interned_text[i])) == NULL)
            return NULL;
    return PyModule_Create(&numbers_module);
}
