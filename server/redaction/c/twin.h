/* What the compiled twins codes.c, emails.c and ipv6s.c share: reading the text, checking
 * `scan(text, low)`'s arguments, building a hit, taking the reference's rules in `configure` (all
 * or none), and the module definition. Static functions in a header: each extension module
 * compiles its own copy, from this one source. */

#ifndef DESKGATE_TWIN_H
#define DESKGATE_TWIN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The text as the detectors read it: any str kind, read through `PyUnicode_READ`. */
typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n;
} Text;

static inline Py_ALWAYS_INLINE Py_UCS4 at(const Text *t, Py_ssize_t i)
{
    return PyUnicode_READ(t->kind, t->data, i);
}

/* A rule `configure` takes: an attribute path from the detectors module ("PiiClass.IP"), and the
 * module-state slot that holds it. */
typedef struct {
    const char *path;
    PyObject **slot;
} TakenRule;

/* 0 when `scan`'s arguments are two str of one length and the twin is configured; -1 with the error
 * set otherwise (TypeError, ValueError, RuntimeError). `twin` names the module in messages. */
static int twin_arguments(PyObject *const *args, Py_ssize_t nargs, int configured, const char *twin)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "scan(text, low) takes 2 arguments (%zd given)", nargs);
        return -1;
    }
    if (!PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "scan(text, low) takes two str");
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000 /* before 3.12 a str may still have to be made canonical */
    if (PyUnicode_READY(args[0]) < 0 || PyUnicode_READY(args[1]) < 0)
        return -1;
#endif
    if (PyUnicode_GET_LENGTH(args[1]) != PyUnicode_GET_LENGTH(args[0])) {
        PyErr_SetString(PyExc_ValueError, "scan(text, low): low must have the length of text");
        return -1;
    }
    if (!configured) {
        PyErr_Format(PyExc_RuntimeError, "%s.configure(detectors) was not called", twin);
        return -1;
    }
    return 0;
}

/* `module.<path>`, the path being names joined by dots; NULL with AttributeError naming it. */
static PyObject *twin_rule(PyObject *module, const char *path, const char *twin)
{
    PyObject *names = PyUnicode_FromString(path);
    PyObject *dot = PyUnicode_FromString(".");
    PyObject *parts = names && dot ? PyUnicode_Split(names, dot, -1) : NULL;
    Py_XDECREF(names);
    Py_XDECREF(dot);
    if (parts == NULL)
        return NULL;
    PyObject *value = Py_NewRef(module);
    for (Py_ssize_t i = 0; value != NULL && i < PyList_GET_SIZE(parts); i++)
        Py_SETREF(value, PyObject_GetAttr(value, PyList_GET_ITEM(parts, i)));
    Py_DECREF(parts);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_AttributeError, "%s.configure: the detectors module has no %s", twin, path);
    }
    return value;
}

/* `configure(detectors)`: every rule of `rules` into its slot, replacing what was there - all of
 * them, or none when one is missing (the slots keep the previous ones). */
static PyObject *twin_configure(PyObject *module, const TakenRule *rules, size_t count, const char *twin)
{
    PyObject **taken = PyMem_New(PyObject *, count);
    if (taken == NULL)
        return PyErr_NoMemory();
    for (size_t i = 0; i < count; i++) {
        taken[i] = twin_rule(module, rules[i].path, twin);
        if (taken[i] == NULL) {
            while (i-- > 0)
                Py_DECREF(taken[i]);
            PyMem_Free(taken);
            return NULL;
        }
    }
    for (size_t i = 0; i < count; i++)
        Py_XSETREF(*rules[i].slot, taken[i]);
    PyMem_Free(taken);
    Py_RETURN_NONE;
}

/* A detector's hit `(cls, kind, start, end, value)`, taking `value`'s reference; NULL on error. */
static inline PyObject *hit_tuple(PyObject *cls, PyObject *kind, Py_ssize_t start, Py_ssize_t end, PyObject *value)
{
    PyObject *hit = PyTuple_New(5), *from = PyLong_FromSsize_t(start), *to = PyLong_FromSsize_t(end);
    if (hit == NULL || from == NULL || to == NULL) {
        Py_XDECREF(hit);
        Py_XDECREF(from);
        Py_XDECREF(to);
        Py_DECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(hit, 0, Py_NewRef(cls));
    PyTuple_SET_ITEM(hit, 1, Py_NewRef(kind));
    PyTuple_SET_ITEM(hit, 2, from);
    PyTuple_SET_ITEM(hit, 3, to);
    PyTuple_SET_ITEM(hit, 4, value);
    return hit;
}

/* The module of a twin named `_c_<name>`: its `configure` over the file's `taken_rules`, its method
 * table (`configure` and the file's `scan`), and its definition `twin_module`, which the file's
 * init function creates after interning what its scan needs. */
#define TWIN_MODULE(name, doc)                                                                          \
    static PyObject *configure(PyObject *self, PyObject *module)                                       \
    {                                                                                                   \
        (void)self;                                                                                     \
        return twin_configure(module, taken_rules, sizeof taken_rules / sizeof taken_rules[0],          \
                              "_c_" #name);                                                             \
    }                                                                                                   \
    static PyMethodDef twin_methods[] = {                                                               \
        {"configure", configure, METH_O, "configure(detectors): take the reference's rules from its module."}, \
        {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,                                      \
         "scan(text, low) -> list: exactly list(detectors._" #name "(text, low))."},                    \
        {NULL, NULL, 0, NULL},                                                                          \
    };                                                                                                  \
    static struct PyModuleDef twin_module = {                                                           \
        PyModuleDef_HEAD_INIT, "_c_" #name, doc, -1, twin_methods, NULL, NULL, NULL, NULL,              \
    }

#endif
