/* Compiled twins of two per-text steps of `detect`, for the text support actually holds: accented
 * Latin prose, which `str` stores one byte per character.
 *
 *   own_fold(text) -> bool   `_ITS_OWN_FOLD.fullmatch(text) is not None` (fold.py): every character
 *                            ASCII or in `_STABLE`, so the text is its own fold
 *   lower(text) -> str       `text.lower()`
 *
 * Both read tables that `configure(fold)` builds from the reference itself: the membership of each
 * character below FIRST_OUTSIDE in `fold._STABLE`, and `chr(c).lower()` of each character of the
 * Basic Multilingual Plane. A text of one- or two-byte characters is lower-cased by table (CPython's
 * own `str.lower` takes its slow path for any non-ASCII text: about 3 ns a character); a text with a
 * character whose lower case is not one BMP character (U+0130), or depends on its neighbours (the
 * final sigma of U+03A3), or a four-byte character, is handed to `str.lower` itself.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Every character of `_STABLE` lies below this (fold.py takes them from blocks below U+20C0);
 * `configure` refuses a `_STABLE` that does not. */
#define FIRST_OUTSIDE 0x2100

static unsigned char stable[FIRST_OUTSIDE]; /* 1: ASCII or in `_STABLE` */
#define SPECIAL 0xFFFF /* in `lower_of`: ask `str.lower` (U+FFFF itself is sent there too) */
static Py_UCS2 lower_of[0x10000];           /* `chr(c).lower()` for every BMP character, or SPECIAL */
static int configured;

/* 0 when `text` is a str this module can read (and tables are built); -1 with the error set. */
static int readable(PyObject *text, const char *function)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a str", function);
        return -1;
    }
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure(fold) first");
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) /* a legacy string of the old C API */
        return -1;
#endif
    return 0;
}

static PyObject *own_fold(PyObject *self, PyObject *text)
{
    (void)self;
    if (readable(text, "own_fold") < 0)
        return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= FIRST_OUTSIDE || !stable[c])
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

static PyObject *lower(PyObject *self, PyObject *text)
{
    (void)self;
    if (readable(text, "lower") < 0)
        return NULL;
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_4BYTE_KIND || PyUnicode_IS_ASCII(text)) /* ASCII: CPython's fast path already */
        return PyObject_CallMethod(text, "lower", NULL);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS2 *out = PyMem_New(Py_UCS2, n);
    if (out == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS2 low = lower_of[PyUnicode_READ(kind, data, i)]; /* below 0x10000: not a 4-byte text */
        if (low == SPECIAL) {
            PyMem_Free(out);
            return PyObject_CallMethod(text, "lower", NULL);
        }
        out[i] = low;
    }
    /* Built from the widest kind it needs, as every str must be (equality and hashing rely on it). */
    PyObject *lowered = PyUnicode_FromKindAndData(PyUnicode_2BYTE_KIND, out, n);
    PyMem_Free(out);
    return lowered;
}

/* The BMP lower-case table from `str.lower` itself: SPECIAL where it is not one BMP character, or
 * where `str.lower` reads the neighbours (capital sigma: final or not). */
static int take_lower(Py_UCS2 *table)
{
    for (Py_UCS4 c = 0; c < 0x10000; c++) {
        if (c == 0x3A3 || c == SPECIAL || (c >= 0xD800 && c < 0xE000)) {
            table[c] = SPECIAL; /* surrogates: a lone one in a str, handed over as it is */
            continue;
        }
        PyObject *ch = PyUnicode_FromOrdinal((int)c);
        PyObject *low = ch == NULL ? NULL : PyObject_CallMethod(ch, "lower", NULL);
        Py_XDECREF(ch);
        if (low == NULL)
            return -1;
        Py_UCS4 value = PyUnicode_GET_LENGTH(low) == 1 ? PyUnicode_READ_CHAR(low, 0) : SPECIAL;
        Py_DECREF(low);
        table[c] = value < SPECIAL ? (Py_UCS2)value : SPECIAL;
    }
    return 0;
}

/* The membership table from `fold._STABLE`, plus ASCII. */
static int take_stable(PyObject *fold, unsigned char *table)
{
    PyObject *chars = PyObject_GetAttrString(fold, "_STABLE");
    if (chars == NULL)
        return -1;
    int failed = !PyUnicode_Check(chars);
    if (failed)
        PyErr_SetString(PyExc_TypeError, "fold._STABLE is not a str");
    memset(table, 0, FIRST_OUTSIDE);
    memset(table, 1, 0x80);
    for (Py_ssize_t i = 0; !failed && i < PyUnicode_GET_LENGTH(chars); i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(chars, i);
        if (c >= FIRST_OUTSIDE) {
            PyErr_Format(PyExc_RuntimeError, "_c_text: fold._STABLE holds U+%04X, above its table", (unsigned)c);
            failed = 1;
        } else {
            table[c] = 1;
        }
    }
    Py_DECREF(chars);
    return failed ? -1 : 0;
}

/* configure(fold): build both tables from the reference; on failure the previous ones stay. */
static PyObject *configure(PyObject *self, PyObject *fold)
{
    (void)self;
    unsigned char fresh_stable[FIRST_OUTSIDE];
    if (take_stable(fold, fresh_stable) < 0)
        return NULL;
    if (!configured && take_lower(lower_of) < 0) /* from `str.lower`, not the reference: built once */
        return NULL;
    memcpy(stable, fresh_stable, sizeof stable);
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_O, "configure(fold): build the tables from the reference module."},
    {"own_fold", own_fold, METH_O, "own_fold(text) -> bool: _ITS_OWN_FOLD.fullmatch(text) is not None."},
    {"lower", lower, METH_O, "lower(text) -> str: text.lower()."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef text_module = {
    PyModuleDef_HEAD_INIT, "_c_text", "Compiled twins of fold.py's own-fold check and str.lower.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__c_text(void)
{
    return PyModule_Create(&text_module);
}
