/* The compiled twin of `_secrets` in `detectors.py` (see `native.py`).
 *
 * `scan(text, low)` returns exactly `list(detectors._secrets(text, low))`. The scans over the whole
 * text are C: the secret literals, the pair separators with a key word in reach, the spoken key
 * words. Every rule that decides a candidate is the reference's own compiled pattern, called here
 * at the candidate (`pattern.match`, `_PAIR_NEAR.search`, `_PAIR_KEY.search`, `_PAIR_VALUE.match`,
 * `_PLACEHOLDER.match`, `_PAIR_SPOKEN.match`, `_NOT_A_WORD.search`): candidates are rare, and so
 * there is one copy of each rule. `configure(detectors)` takes those objects from the module.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* --- words: the literals and key words the scans look for ---------------------------------------- */

/* Words looked up by their first two characters: the scans read every character of the text, and
 * nearly every place starts no word. A table of first characters alone would stop at every `e` or
 * `s` of prose (`eyJ`, `sk-`); the table of first pairs stops at few places, and costs one read. */
typedef struct {
    Py_ssize_t count;
    Py_UCS4 *chars;       /* every word's characters, back to back */
    Py_ssize_t *offset;   /* word i is chars[offset[i] .. offset[i + 1]) */
    Py_ssize_t *tag;      /* what word i stands for (its secret's index, its spoken kind) */
    Py_ssize_t *next;     /* the next word with the same first character (in the order added), or -1 */
    Py_ssize_t head[128]; /* the first word starting with this ASCII character, or -1 */
    Py_ssize_t wide;      /* the first word starting with a non-ASCII character, or -1 */
    unsigned char pair[128][128]; /* a word starts with a, then b or nothing (a, b ASCII): a byte
                                   * each, not a bit, so testing one is a single load */
} Words;

static void words_init(Words *w) {
    memset(w, 0, sizeof *w);
    for (int c = 0; c < 128; c++)
        w->head[c] = -1;
    w->wide = -1;
}

static void words_clear(Words *w) {
    PyMem_Free(w->chars);
    PyMem_Free(w->offset);
    PyMem_Free(w->tag);
    PyMem_Free(w->next);
    words_init(w);
}

static int words_add(Words *w, PyObject *word, Py_ssize_t tag) {
    if (!PyUnicode_Check(word)) {
        PyErr_SetString(PyExc_TypeError, "a word to scan for is not a str");
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(word) < 0)
        return 0;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(word);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "a word to scan for is empty");
        return 0;
    }
    Py_ssize_t used = w->count ? w->offset[w->count] : 0;
    if (n > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Py_UCS4) - used
        || w->count > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Py_ssize_t) - 2) {
        PyErr_NoMemory();
        return 0;
    }
    Py_UCS4 *chars = PyMem_Realloc(w->chars, (size_t)(used + n) * sizeof(Py_UCS4));
    if (chars == NULL)
        return PyErr_NoMemory(), 0;
    w->chars = chars;
    Py_ssize_t *offset = PyMem_Realloc(w->offset, (size_t)(w->count + 2) * sizeof(Py_ssize_t));
    if (offset == NULL)
        return PyErr_NoMemory(), 0;
    w->offset = offset;
    Py_ssize_t *tags = PyMem_Realloc(w->tag, (size_t)(w->count + 1) * sizeof(Py_ssize_t));
    if (tags == NULL)
        return PyErr_NoMemory(), 0;
    w->tag = tags;
    Py_ssize_t *next = PyMem_Realloc(w->next, (size_t)(w->count + 1) * sizeof(Py_ssize_t));
    if (next == NULL)
        return PyErr_NoMemory(), 0;
    w->next = next;

    int kind = PyUnicode_KIND(word);
    const void *data = PyUnicode_DATA(word);
    for (Py_ssize_t i = 0; i < n; i++)
        w->chars[used + i] = PyUnicode_READ(kind, data, i);
    Py_ssize_t id = w->count;
    w->offset[id] = used;
    w->offset[id + 1] = used + n;
    w->tag[id] = tag;
    w->next[id] = -1;
    w->count++;
    /* appended last in its chain: a lookup returns the first word added that fits */
    Py_UCS4 first = w->chars[used];
    if (first < 128 && n == 1)
        memset(w->pair[first], 1, sizeof w->pair[first]);
    else if (first < 128 && w->chars[used + 1] < 128)
        w->pair[first][w->chars[used + 1]] = 1;
    Py_ssize_t *link = first < 128 ? &w->head[first] : &w->wide;
    while (*link >= 0)
        link = &w->next[*link];
    *link = id;
    return 1;
}

/* A str read by index: its kind and data, taken once. */
typedef struct {
    PyObject *obj;
    int kind;
    const void *data;
    Py_ssize_t len;
} Text;

static inline Py_UCS4 text_at(const Text *t, Py_ssize_t i) {
    return PyUnicode_READ(t->kind, t->data, i);
}

/* Whether a word may start with `c` (a necessary condition only). */
static inline int words_may_start(const Words *w, Py_UCS4 c) {
    return c < 128 ? w->head[c] >= 0 : w->wide >= 0;
}

/* Whether a word may start at a place holding `a` then `b` (a necessary condition). */
static inline int words_pair_may(const Words *w, Py_UCS4 a, Py_UCS4 b) {
    return (a | b) < 128 ? w->pair[a][b] : words_may_start(w, a);
}

/* The first place from `i` on where a word of `w` may start (a necessary condition: `words_at`
 * decides), or `n`. One loop per character width, so a read is a plain load; four ASCII places
 * are tested with one branch, as most blocks of four hold no candidate. */
#define WORDS_NEXT(TYPE)                                                                            \
    static Py_ssize_t words_next_##TYPE(const Words *w, const TYPE *d, Py_ssize_t i, Py_ssize_t n) { \
        while (i + 1 < n) {                                                                         \
            for (; i + 4 < n && (d[i] | d[i + 1] | d[i + 2] | d[i + 3] | d[i + 4]) < 128; i += 4)     \
                if (w->pair[d[i]][d[i + 1]] | w->pair[d[i + 1]][d[i + 2]] | w->pair[d[i + 2]][d[i + 3]] \
                    | w->pair[d[i + 3]][d[i + 4]])                                                  \
                    break;                                                                          \
            for (Py_ssize_t stop = i + 4 < n ? i + 4 : n - 1; i < stop; i++)                        \
                if (words_pair_may(w, d[i], d[i + 1]))                                              \
                    return i;                                                                       \
        }                                                                                           \
        return i + 1 == n && words_may_start(w, d[i]) ? i : n;                                      \
    }
WORDS_NEXT(Py_UCS1)
WORDS_NEXT(Py_UCS2)
WORDS_NEXT(Py_UCS4)

static Py_ssize_t words_next(const Words *w, const Text *t, Py_ssize_t from) {
    switch (t->kind) {
    case PyUnicode_1BYTE_KIND:
        return words_next_Py_UCS1(w, t->data, from, t->len);
    case PyUnicode_2BYTE_KIND:
        return words_next_Py_UCS2(w, t->data, from, t->len);
    default:
        return words_next_Py_UCS4(w, t->data, from, t->len);
    }
}

/* The first word (in the order added) that starts at `pos` and ends by `limit` (<= the text's
 * length), or -1. */
static inline Py_ssize_t words_at(const Words *w, const Text *t, Py_ssize_t pos, Py_ssize_t limit) {
    Py_UCS4 c = text_at(t, pos);
    Py_ssize_t id = c < 128 ? w->head[c] : w->wide;
    for (; id >= 0; id = w->next[id]) {
        const Py_UCS4 *word = w->chars + w->offset[id];
        Py_ssize_t n = w->offset[id + 1] - w->offset[id];
        if (n > limit - pos)
            continue;
        Py_ssize_t i = 0;
        while (i < n && text_at(t, pos + i) == word[i])
            i++;
        if (i == n)
            return id;
    }
    return -1;
}

/* --- the rules, taken from the reference module by `configure` ------------------------------- */

typedef struct {
    PyObject *kind;  /* the table's kind str */
    PyObject *match; /* its pattern's bound `match` */
    PyObject *group; /* the group holding the secret (int) */
    int bearer;      /* bearer tokens follow their scheme word: no token-boundary rule */
} Secret;

typedef struct {
    PyObject *secret_class; /* PiiClass.SECRET */
    Py_ssize_t n_secrets;
    Secret *secrets;              /* `_SECRETS`, in table order */
    Words literals;               /* `_LITERALS`, tagged by `_SECRETS_BY_LITERAL` */
    unsigned char token_char[128]; /* `_TOKEN_CHAR`, its ASCII part */
    PyObject *token_chars;        /* `_TOKEN_CHAR` itself, asked about non-ASCII characters */
    Words hints;                  /* `_PAIR_HINT_WORDS` */
    Py_ssize_t reach;             /* `_PAIR_REACH` */
    PyObject *near_search;        /* `_PAIR_NEAR.search` */
    PyObject *key_search;         /* `_PAIR_KEY.search` */
    PyObject *value_match;        /* `_PAIR_VALUE.match` */
    PyObject *placeholder_match;  /* `_PLACEHOLDER.match` */
    Words pair_words;             /* the separators and the spoken key words (`pair_hits`) */
    PyObject *spoken_match;       /* `_PAIR_SPOKEN.match` */
    PyObject *not_a_word_search;  /* `_NOT_A_WORD.search` */
} Rules;

static Rules rules;
static int configured;
/* Scans running (a rule is Python code, which could call `configure`): `configure` refuses to
 * free the rules under them. */
static int scanning;

static PyObject *str_span;       /* "span" */
static PyObject *str_credential; /* the kind of every pair hit */

/* What `pair_hits` looks for in `low`: the separators (`_pair_separators`), and `_spoken_starts`'s
 * key words: `_SPOKEN_P`'s three, which "mot de " may precede, and two more. */
enum { PAIR_SEPARATOR, SPOKEN_P, SPOKEN_OTHER };
static const char *const SPOKEN_P_WORDS[] = {"pass", "pwd", "pin"};
static const char *const SPOKEN_OTHER_WORDS[] = {"contrase\xc3\xb1" "a", "wachtwoord"};
static const char MOT_DE[] = "mot de "; /* before "passe": "mot de passe" */
/* How far before its separator `_pairs` reads a pair's key (`_PAIR_KEY.search(text, at - 48, at)`). */
#define KEY_BEFORE 48

static void rules_init(Rules *r) {
    memset(r, 0, sizeof *r);
    words_init(&r->literals);
    words_init(&r->hints);
    words_init(&r->pair_words);
}

static void rules_clear(Rules *r) {
    Py_CLEAR(r->secret_class);
    for (Py_ssize_t i = 0; i < r->n_secrets; i++) {
        Py_CLEAR(r->secrets[i].kind);
        Py_CLEAR(r->secrets[i].match);
        Py_CLEAR(r->secrets[i].group);
    }
    PyMem_Free(r->secrets);
    words_clear(&r->literals);
    Py_CLEAR(r->token_chars);
    words_clear(&r->hints);
    Py_CLEAR(r->near_search);
    Py_CLEAR(r->key_search);
    Py_CLEAR(r->value_match);
    Py_CLEAR(r->placeholder_match);
    words_clear(&r->pair_words);
    Py_CLEAR(r->spoken_match);
    Py_CLEAR(r->not_a_word_search);
    rules_init(r);
}

/* `module.<pattern>.<method>`, a new reference. */
static PyObject *pattern_method(PyObject *module, const char *pattern, const char *method) {
    PyObject *p = PyObject_GetAttrString(module, pattern);
    if (p == NULL)
        return NULL;
    PyObject *bound = PyObject_GetAttrString(p, method);
    Py_DECREF(p);
    return bound;
}

static int load_secret(Secret *s, PyObject *entry) {
    PyObject *fields = PySequence_Fast(entry, "a _SECRETS entry is not a sequence");
    if (fields == NULL)
        return 0;
    int ok = 0;
    if (PySequence_Fast_GET_SIZE(fields) != 4) {
        PyErr_SetString(PyExc_ValueError, "a _SECRETS entry is not (kind, literals, pattern, group)");
        goto done;
    }
    PyObject *kind = PySequence_Fast_GET_ITEM(fields, 0);
    PyObject *group = PySequence_Fast_GET_ITEM(fields, 3);
    if (!PyUnicode_Check(kind) || !PyLong_Check(group)) {
        PyErr_SetString(PyExc_TypeError, "a _SECRETS kind is not a str or its group not an int");
        goto done;
    }
    s->match = PyObject_GetAttrString(PySequence_Fast_GET_ITEM(fields, 2), "match");
    if (s->match == NULL)
        goto done;
    s->kind = Py_NewRef(kind);
    s->group = Py_NewRef(group);
    s->bearer = PyUnicode_CompareWithASCIIString(kind, "bearer_token") == 0;
    ok = 1;
done:
    Py_DECREF(fields);
    return ok;
}

static int load_secrets(Rules *r, PyObject *module) {
    PyObject *table = PyObject_GetAttrString(module, "_SECRETS");
    if (table == NULL)
        return 0;
    PyObject *entries = PySequence_Fast(table, "_SECRETS is not a sequence");
    Py_DECREF(table);
    if (entries == NULL)
        return 0;
    int ok = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(entries);
    r->secrets = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Secret));
    if (r->secrets == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; r->n_secrets < n; r->n_secrets++)
        if (!load_secret(&r->secrets[r->n_secrets], PySequence_Fast_GET_ITEM(entries, r->n_secrets)))
            goto done;
    ok = 1;
done:
    Py_DECREF(entries);
    return ok;
}

/* `_LITERALS`, each tagged with its pattern's index as `_SECRETS_BY_LITERAL` gives it. */
static int load_literals(Rules *r, PyObject *module) {
    PyObject *literals = PyObject_GetAttrString(module, "_LITERALS");
    if (literals == NULL)
        return 0;
    PyObject *by_literal = PyObject_GetAttrString(module, "_SECRETS_BY_LITERAL");
    PyObject *seq = PySequence_Fast(literals, "_LITERALS is not a sequence");
    Py_DECREF(literals);
    int ok = 0;
    if (by_literal == NULL || seq == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *literal = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *index = PyObject_GetItem(by_literal, literal);
        if (index == NULL)
            goto done;
        Py_ssize_t tag = PyLong_AsSsize_t(index);
        Py_DECREF(index);
        if (tag == -1 && PyErr_Occurred())
            goto done;
        if (tag < 0 || tag >= r->n_secrets) {
            PyErr_SetString(PyExc_ValueError, "_SECRETS_BY_LITERAL names no _SECRETS entry");
            goto done;
        }
        if (!words_add(&r->literals, literal, tag))
            goto done;
    }
    ok = 1;
done:
    Py_XDECREF(by_literal);
    Py_XDECREF(seq);
    return ok;
}

static int load_token_chars(Rules *r, PyObject *module) {
    r->token_chars = PyObject_GetAttrString(module, "_TOKEN_CHAR");
    if (r->token_chars == NULL)
        return 0;
    if (!PyAnySet_Check(r->token_chars)) {
        PyErr_SetString(PyExc_TypeError, "_TOKEN_CHAR is not a set");
        return 0;
    }
    for (int c = 0; c < 128; c++) {
        PyObject *one = PyUnicode_FromOrdinal(c);
        if (one == NULL)
            return 0;
        int in = PySet_Contains(r->token_chars, one);
        Py_DECREF(one);
        if (in < 0)
            return 0;
        r->token_char[c] = (unsigned char)in;
    }
    return 1;
}

static int load_hints(Rules *r, PyObject *module) {
    PyObject *words = PyObject_GetAttrString(module, "_PAIR_HINT_WORDS");
    if (words == NULL)
        return 0;
    PyObject *seq = PySequence_Fast(words, "_PAIR_HINT_WORDS is not a sequence");
    Py_DECREF(words);
    if (seq == NULL)
        return 0;
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(seq); i++)
        ok = words_add(&r->hints, PySequence_Fast_GET_ITEM(seq, i), 0);
    Py_DECREF(seq);
    if (!ok)
        return 0;
    PyObject *reach = PyObject_GetAttrString(module, "_PAIR_REACH");
    if (reach == NULL)
        return 0;
    r->reach = PyLong_AsSsize_t(reach);
    Py_DECREF(reach);
    if (r->reach == -1 && PyErr_Occurred())
        return 0;
    if (r->reach < 0) {
        PyErr_SetString(PyExc_ValueError, "_PAIR_REACH is negative");
        return 0;
    }
    return 1;
}

static int add_c_word(Words *w, const char *utf8, Py_ssize_t tag) {
    PyObject *word = PyUnicode_FromString(utf8);
    if (word == NULL)
        return 0;
    int ok = words_add(w, word, tag);
    Py_DECREF(word);
    return ok;
}

static int load_pair_words(Rules *r) {
    if (!add_c_word(&r->pair_words, ":", PAIR_SEPARATOR) || !add_c_word(&r->pair_words, "=", PAIR_SEPARATOR))
        return 0;
    for (size_t i = 0; i < sizeof SPOKEN_P_WORDS / sizeof *SPOKEN_P_WORDS; i++)
        if (!add_c_word(&r->pair_words, SPOKEN_P_WORDS[i], SPOKEN_P))
            return 0;
    for (size_t i = 0; i < sizeof SPOKEN_OTHER_WORDS / sizeof *SPOKEN_OTHER_WORDS; i++)
        if (!add_c_word(&r->pair_words, SPOKEN_OTHER_WORDS[i], SPOKEN_OTHER))
            return 0;
    return 1;
}

static int load_secret_class(Rules *r, PyObject *module) {
    PyObject *classes = PyObject_GetAttrString(module, "PiiClass");
    if (classes == NULL)
        return 0;
    r->secret_class = PyObject_GetAttrString(classes, "SECRET");
    Py_DECREF(classes);
    return r->secret_class != NULL;
}

static int load_rules(Rules *r, PyObject *module) {
    return load_secret_class(r, module) && load_secrets(r, module) && load_literals(r, module)
        && load_token_chars(r, module) && load_hints(r, module) && load_pair_words(r)
        && (r->near_search = pattern_method(module, "_PAIR_NEAR", "search")) != NULL
        && (r->key_search = pattern_method(module, "_PAIR_KEY", "search")) != NULL
        && (r->value_match = pattern_method(module, "_PAIR_VALUE", "match")) != NULL
        && (r->placeholder_match = pattern_method(module, "_PLACEHOLDER", "match")) != NULL
        && (r->spoken_match = pattern_method(module, "_PAIR_SPOKEN", "match")) != NULL
        && (r->not_a_word_search = pattern_method(module, "_NOT_A_WORD", "search")) != NULL;
}

static PyObject *configure(PyObject *self, PyObject *module) {
    (void)self;
    if (scanning) {
        PyErr_SetString(PyExc_RuntimeError, "configure() called from inside scan()");
        return NULL;
    }
    Rules fresh;
    rules_init(&fresh);
    if (!load_rules(&fresh, module)) {
        rules_clear(&fresh);
        return NULL;
    }
    /* swapped before the old rules are released: releasing them could run Python code */
    Rules old = rules;
    rules = fresh;
    configured = 1;
    rules_clear(&old);
    Py_RETURN_NONE;
}

/* --- calling the reference's rules --------------------------------------------------------- */

/* `rule(string, pos[, endpos])`: a bound `match`/`search`; a new reference (None: no match). */
static PyObject *call_at(PyObject *rule, PyObject *string, Py_ssize_t pos, Py_ssize_t endpos) {
    PyObject *args[4] = {NULL, string, NULL, NULL};
    args[2] = PyLong_FromSsize_t(pos);
    if (args[2] == NULL)
        return NULL;
    size_t nargs = 2;
    if (endpos >= 0) {
        args[3] = PyLong_FromSsize_t(endpos);
        if (args[3] == NULL) {
            Py_DECREF(args[2]);
            return NULL;
        }
        nargs = 3;
    }
    PyObject *result = PyObject_Vectorcall(rule, args + 1, nargs | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(args[2]);
    Py_XDECREF(args[3]);
    return result;
}

/* `m.span(group)` (`group` NULL: the whole match). */
static int span_of(PyObject *m, PyObject *group, Py_ssize_t *start, Py_ssize_t *end) {
    PyObject *args[2] = {m, group};
    PyObject *span = PyObject_VectorcallMethod(str_span, args, group ? 2 : 1, NULL);
    if (span == NULL)
        return 0;
    int ok = 0;
    if (!PyTuple_Check(span) || PyTuple_GET_SIZE(span) != 2) {
        PyErr_SetString(PyExc_TypeError, "a match's span is not a pair");
        goto done;
    }
    *start = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 0));
    if (*start == -1 && PyErr_Occurred())
        goto done;
    *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(span, 1));
    if (*end == -1 && PyErr_Occurred())
        goto done;
    ok = 1;
done:
    Py_DECREF(span);
    return ok;
}

/* A span read from a match lies within the text: a group that took no part (-1, -1) would be a
 * broken rule, not a hit. */
static int span_within(Py_ssize_t start, Py_ssize_t end, Py_ssize_t len) {
    if (0 <= start && start <= end && end <= len)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "a secret's span is not within the text");
    return 0;
}

/* Appends (PiiClass.SECRET, kind, start, end, value); `value` is borrowed. */
static int append_hit(PyObject *out, PyObject *kind, Py_ssize_t start, Py_ssize_t end, PyObject *value) {
    PyObject *hit = PyTuple_New(5);
    if (hit == NULL)
        return 0;
    PyObject *first = PyLong_FromSsize_t(start);
    PyObject *last = first ? PyLong_FromSsize_t(end) : NULL;
    if (last == NULL) {
        Py_XDECREF(first);
        Py_DECREF(hit);
        return 0;
    }
    PyTuple_SET_ITEM(hit, 0, Py_NewRef(rules.secret_class));
    PyTuple_SET_ITEM(hit, 1, Py_NewRef(kind));
    PyTuple_SET_ITEM(hit, 2, first);
    PyTuple_SET_ITEM(hit, 3, last);
    PyTuple_SET_ITEM(hit, 4, Py_NewRef(value));
    int ok = PyList_Append(out, hit) == 0;
    Py_DECREF(hit);
    return ok;
}

/* Appends the hit `text[start:end]`. */
static int append_slice(PyObject *out, const Text *text, PyObject *kind, Py_ssize_t start, Py_ssize_t end) {
    PyObject *value = PyUnicode_Substring(text->obj, start, end);
    if (value == NULL)
        return 0;
    int ok = append_hit(out, kind, start, end, value);
    Py_DECREF(value);
    return ok;
}

/* --- provider keys and tokens: `_matches_by_literal` and the loop of `_secrets` ----------------- */

typedef struct {
    Py_ssize_t index;        /* the pattern's place in `_SECRETS` */
    Py_ssize_t start;        /* the match's start */
    Py_ssize_t value_start;  /* its group's span */
    Py_ssize_t value_end;
} Match;

typedef struct {
    Match *items;
    Py_ssize_t count, size;
} Matches;

/* Room for one more item in a growable array of `item` bytes each, doubling it when full: 1, or 0
 * with MemoryError set (the array is then unchanged). */
static int room_for_one(void **items, Py_ssize_t count, Py_ssize_t *size, size_t item) {
    if (count < *size)
        return 1;
    Py_ssize_t bigger = *size ? *size * 2 : 16;
    if ((size_t)bigger > (size_t)PY_SSIZE_T_MAX / item)
        return PyErr_NoMemory(), 0;
    void *moved = PyMem_Realloc(*items, (size_t)bigger * item);
    if (moved == NULL)
        return PyErr_NoMemory(), 0;
    *items = moved;
    *size = bigger;
    return 1;
}

static int matches_push(Matches *ms, Match m) {
    void *items = ms->items;
    if (!room_for_one(&items, ms->count, &ms->size, sizeof(Match)))
        return 0;
    ms->items = items;
    ms->items[ms->count++] = m;
    return 1;
}

/* Tries the pattern `index` where one of its literals starts (`_matches_by_literal`'s body). */
static int try_secret(const Text *text, Py_ssize_t index, Py_ssize_t at, Py_ssize_t *ends, Matches *found) {
    const Secret *s = &rules.secrets[index];
    PyObject *m = call_at(s->match, text->obj, at, -1);
    if (m == NULL)
        return 0;
    if (m == Py_None) {
        Py_DECREF(m);
        return 1;
    }
    Match hit = {index, 0, 0, 0};
    Py_ssize_t end;
    int ok = span_of(m, NULL, &hit.start, &end) && span_within(hit.start, end, text->len)
        && span_of(m, s->group, &hit.value_start, &hit.value_end)
        && span_within(hit.value_start, hit.value_end, text->len);
    Py_DECREF(m);
    if (!ok)
        return 0;
    ends[index] = end;
    return matches_push(found, hit);
}

/* `_matches_by_literal`: every place a literal starts (a literal starting inside another is seen
 * too), its pattern tried there unless the place is inside that pattern's previous match. The same
 * matches as `_matches_by_pattern` at every length (the reference's tests prove it), so one way serves. */
static int matches_by_literal(const Text *text, Matches *found) {
    Py_ssize_t *ends = PyMem_Calloc((size_t)(rules.n_secrets ? rules.n_secrets : 1), sizeof(Py_ssize_t));
    if (ends == NULL)
        return PyErr_NoMemory(), 0;
    int ok = 1;
    for (Py_ssize_t at = words_next(&rules.literals, text, 0); ok && at < text->len;
         at = words_next(&rules.literals, text, at + 1)) {
        Py_ssize_t word = words_at(&rules.literals, text, at, text->len);
        if (word < 0)
            continue;
        Py_ssize_t index = rules.literals.tag[word];
        if (at >= ends[index])
            ok = try_secret(text, index, at, ends, found);
    }
    PyMem_Free(ends);
    return ok;
}

/* `text[start - 1] in _TOKEN_CHAR` */
static int token_char_before(const Text *text, Py_ssize_t start) {
    Py_UCS4 c = text_at(text, start - 1);
    if (c < 128)
        return rules.token_char[c];
    PyObject *one = PyUnicode_FromOrdinal((int)c);
    if (one == NULL)
        return -1;
    int in = PySet_Contains(rules.token_chars, one);
    Py_DECREF(one);
    return in;
}

/* `_secrets` up to the pairs: the matches in table order, each but a bearer token's skipped when
 * it is the tail of a longer token. */
static int secret_hits(const Text *text, PyObject *out) {
    Matches found = {NULL, 0, 0};
    int ok = matches_by_literal(text, &found);
    for (Py_ssize_t index = 0; ok && index < rules.n_secrets; index++) {
        const Secret *s = &rules.secrets[index];
        for (Py_ssize_t i = 0; ok && i < found.count; i++) {
            const Match *m = &found.items[i];
            if (m->index != index)
                continue;
            if (!s->bearer && m->start) {
                int inside = token_char_before(text, m->start);
                if (inside != 0) {
                    ok = inside > 0;
                    continue;
                }
            }
            ok = append_slice(out, text, s->kind, m->value_start, m->value_end);
        }
    }
    PyMem_Free(found.items);
    return ok;
}

/* --- `key: value` pairs: `_pairs`, `_pair_separators` -------------------------------------------- */

/* Whether a `_PAIR_HINT_WORDS` word lies within low[lo:at]: every key word of `_PAIR_NEAR` holds one,
 * so without one `_PAIR_NEAR.search(low, lo, at + 1)` cannot match. */
static int hint_within(const Text *low, Py_ssize_t lo, Py_ssize_t at) {
    for (Py_ssize_t i = lo; i < at; i++)
        if (words_at(&rules.hints, low, i, at) >= 0)
            return 1;
    return 0;
}

/* The pair whose separator is at `at`: its key read back from there, its value after it. */
static int pair_at(const Text *text, Py_ssize_t at, PyObject *out) {
    PyObject *key = call_at(rules.key_search, text->obj, at > KEY_BEFORE ? at - KEY_BEFORE : 0, at);
    if (key == NULL)
        return 0;
    int has_key = key != Py_None;
    Py_DECREF(key);
    if (!has_key)
        return 1;
    PyObject *value = call_at(rules.value_match, text->obj, at + 1, -1);
    if (value == NULL)
        return 0;
    if (value == Py_None) {
        Py_DECREF(value);
        return 1;
    }
    /* the value's group: quoted "...", quoted '...', or bare; exactly one takes part */
    Py_ssize_t start = -1, end = -1;
    int ok = 1;
    for (long g = 1; ok && g <= 3 && start == -1; g++) {
        PyObject *group = PyLong_FromLong(g);
        ok = group != NULL && span_of(value, group, &start, &end);
        Py_XDECREF(group);
    }
    Py_DECREF(value);
    if (!ok || !span_within(start, end, text->len))
        return 0;
    PyObject *secret = PyUnicode_Substring(text->obj, start, end);
    if (secret == NULL)
        return 0;
    PyObject *placeholder = PyObject_CallOneArg(rules.placeholder_match, secret);
    ok = placeholder != NULL;
    if (ok && placeholder == Py_None)
        ok = append_hit(out, str_credential, start, end, secret);
    Py_XDECREF(placeholder);
    Py_DECREF(secret);
    return ok;
}

/* `_pair_separators`' body: the separator at `at` ends a `_PAIR_NEAR` match looked for since the
 * separator before it (`previous`); then `_pairs`' first loop reads the pair there. */
static int separator_at(const Text *text, const Text *low, Py_ssize_t at, Py_ssize_t *previous, PyObject *out) {
    Py_ssize_t lo = at - rules.reach > *previous + 1 ? at - rules.reach : *previous + 1;
    *previous = at;
    if (!hint_within(low, lo, at))
        return 1;
    PyObject *near = call_at(rules.near_search, low->obj, lo, at + 1);
    if (near == NULL)
        return 0;
    int is_pair = near != Py_None;
    Py_DECREF(near);
    return !is_pair || pair_at(text, at, out);
}

/* --- spoken pairs: `_spoken_starts`, `_spoken_pairs` and the second loop of `_pairs` ---------------- */

static int is_rstripped(Py_UCS4 c) {
    return c == '.' || c == ',' || c == ';' || c == ':';
}

/* A `_PAIR_SPOKEN` match starting at `key_start`: its value unless the key word ends a longer word,
 * or the value (its trailing punctuation stripped) is short or a plain word. */
static int spoken_hit(const Text *text, const Text *low, PyObject *m, Py_ssize_t key_start, PyObject *out) {
    if (key_start && Py_UNICODE_ISALNUM(text_at(low, key_start - 1)))
        return 1;
    Py_ssize_t start, end;
    PyObject *one = PyLong_FromLong(1);
    int ok = one != NULL && span_of(m, one, &start, &end) && span_within(start, end, text->len);
    Py_XDECREF(one);
    if (!ok)
        return 0;
    while (end > start && is_rstripped(text_at(text, end - 1)))
        end--;
    if (end - start < 6)
        return 1;
    PyObject *secret = PyUnicode_Substring(text->obj, start, end);
    if (secret == NULL)
        return 0;
    PyObject *symbol = PyObject_CallOneArg(rules.not_a_word_search, secret);
    ok = symbol != NULL;
    if (ok && symbol != Py_None)
        ok = append_hit(out, str_credential, start, end, secret);
    Py_XDECREF(symbol);
    Py_DECREF(secret);
    return ok;
}

/* `_spoken_pairs`' body: `_PAIR_SPOKEN` tried at a key word's start unless inside the previous match. */
static int spoken_at(const Text *text, const Text *low, Py_ssize_t at, Py_ssize_t *end, PyObject *out) {
    if (at < *end)
        return 1;
    PyObject *m = call_at(rules.spoken_match, low->obj, at, -1);
    if (m == NULL)
        return 0;
    Py_ssize_t start;
    int ok = m == Py_None
        || (span_of(m, NULL, &start, end) && span_within(start, *end, low->len) && spoken_hit(text, low, m, start, out));
    Py_DECREF(m);
    return ok;
}

static int mot_de_before(const Text *low, Py_ssize_t at) {
    Py_ssize_t n = (Py_ssize_t)sizeof MOT_DE - 1;
    if (at < n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (text_at(low, at - n + i) != (Py_UCS4)MOT_DE[i])
            return 0;
    return 1;
}

/* Where spoken key words start (`_spoken_starts`), kept until every separator pair is out. */
typedef struct {
    Py_ssize_t *items;
    Py_ssize_t count, size;
} Starts;

static int starts_push(Starts *starts, Py_ssize_t at) {
    void *items = starts->items;
    if (!room_for_one(&items, starts->count, &starts->size, sizeof(Py_ssize_t)))
        return 0;
    starts->items = items;
    starts->items[starts->count++] = at;
    return 1;
}

/* `_pairs` from its gate on. One pass over `low` finds the separators and the spoken key words
 * (`_PAIR_HINT` only spares the reference its scans: without a hint word neither finds a pair).
 * The key words' starts come in order: "mot de " holds none, so the one it adds before a p-word
 * (at - 7) follows every start found before it. */
static int pair_hits(const Text *text, const Text *low, PyObject *out) {
    Starts spoken = {NULL, 0, 0};
    Py_ssize_t previous = -1;
    int ok = 1;
    for (Py_ssize_t at = words_next(&rules.pair_words, low, 0); ok && at < low->len;
         at = words_next(&rules.pair_words, low, at + 1)) {
        Py_ssize_t word = words_at(&rules.pair_words, low, at, low->len);
        if (word < 0)
            continue;
        Py_ssize_t tag = rules.pair_words.tag[word];
        if (tag == PAIR_SEPARATOR) {
            ok = separator_at(text, low, at, &previous, out);
            continue;
        }
        if (tag == SPOKEN_P && mot_de_before(low, at))
            ok = starts_push(&spoken, at - ((Py_ssize_t)sizeof MOT_DE - 1));
        ok = ok && starts_push(&spoken, at);
    }
    Py_ssize_t end = 0;
    for (Py_ssize_t i = 0; ok && i < spoken.count; i++)
        ok = spoken_at(text, low, spoken.items[i], &end, out);
    PyMem_Free(spoken.items);
    return ok;
}

/* --- the module ------------------------------------------------------------------------------ */

static int text_of(PyObject *obj, Text *t) {
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "scan() takes str, not %.100s", Py_TYPE(obj)->tp_name);
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(obj) < 0)
        return 0;
#endif
    t->obj = obj;
    t->kind = PyUnicode_KIND(obj);
    t->data = PyUnicode_DATA(obj);
    t->len = PyUnicode_GET_LENGTH(obj);
    return 1;
}

static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "scan() takes 2 arguments (text, low), %zd given", nargs);
        return NULL;
    }
    Text text, low;
    if (!text_of(args[0], &text) || !text_of(args[1], &low))
        return NULL;
    if (text.len != low.len) {
        PyErr_SetString(PyExc_ValueError, "scan(): text and low differ in length");
        return NULL;
    }
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "scan() before configure()");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    scanning++;
    int ok = secret_hits(&text, out) && pair_hits(&text, &low, out);
    scanning--;
    if (!ok)
        Py_CLEAR(out);
    return out;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_O, "configure(detectors): take the rules from the reference module."},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(text, low) -> list: exactly list(detectors._secrets(text, low))."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_c_secrets", "The compiled twin of detectors._secrets.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__c_secrets(void) {
    if (str_span == NULL && (str_span = PyUnicode_InternFromString("span")) == NULL)
        return NULL;
    if (str_credential == NULL && (str_credential = PyUnicode_InternFromString("credential")) == NULL)
        return NULL;
    if (!configured)
        rules_init(&rules);
    return PyModule_Create(&module_def);
}
