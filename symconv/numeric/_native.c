/* symconv.numeric._native: the compiled path of symconv.additions_per_filter.
 *
 * The formulas and torch's acceptance rules are not written here:
 * _native_generated.h renders the core's SymPy expressions as C
 * (python -m symconv.numeric.codegen). This file holds what they call: int64
 * arithmetic that flags overflow and zero divisors, the exact counters of
 * symconv/core/counters.py, and the binding.
 *
 * The binding answers only calls it can answer exactly: exact ints (or tuples or
 * lists of them), parameters torch accepts, a lower-case convention name, and no
 * overflow. For anything else it returns None and the Python path takes over,
 * with unbounded ints and the error messages.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef long long i64;

#define MAX_AXES 3
#define MAX_TAPS 256 /* wider kernels go to the Python counters */

/* --- checked arithmetic: *e = 1 on overflow or a zero divisor ----------------- */

static inline i64 add_(i64 a, i64 b, int *e)
{
    i64 r;
    if (__builtin_add_overflow(a, b, &r)) *e = 1;
    return r;
}

static inline i64 mul_(i64 a, i64 b, int *e)
{
    i64 r;
    if (__builtin_mul_overflow(a, b, &r)) *e = 1;
    return r;
}

static inline i64 neg_(i64 a, int *e)
{
    return mul_(-1, a, e);
}

/* floor(a / b), as Python's // */
static inline i64 fdiv_(i64 a, i64 b, int *e)
{
    if (b == 0 || (a == LLONG_MIN && b == -1)) {
        *e = 1;
        return 0;
    }
    i64 q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
    return q;
}

/* ceiling(a / b) */
static inline i64 cdiv_(i64 a, i64 b, int *e)
{
    return neg_(fdiv_(neg_(a, e), b, e), e);
}

/* a mod b with the sign of b, as Python's % */
static inline i64 mod_(i64 a, i64 b, int *e)
{
    if (b == 0 || (a == LLONG_MIN && b == -1)) {
        *e = 1;
        return 0;
    }
    i64 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

static inline i64 min_(i64 a, i64 b, int *e)
{
    (void)e;
    return a < b ? a : b;
}

static inline i64 max_(i64 a, i64 b, int *e)
{
    (void)e;
    return a > b ? a : b;
}

static inline i64 gcd(i64 a, i64 b, int *e)
{
    if (a == LLONG_MIN || b == LLONG_MIN) {
        *e = 1;
        return 0;
    }
    a = a < 0 ? -a : a;
    b = b < 0 ? -b : b;
    while (b) {
        i64 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* --- exact counters (symconv/core/counters.py) -------------------------------- */

/* A(q) = #{(i, t) : 0 <= i < n, 0 <= t < k, i*s + t*d < q} */
static i64 lattice_count(i64 q, i64 n, i64 k, i64 s, i64 d, int *e)
{
    i64 total = 0;
    for (i64 t = 0; t < k && !*e; t++) {
        i64 room = add_(q, neg_(mul_(t, d, e), e), e);
        if (room <= 0) break;
        total = add_(total, min_(n, cdiv_(room, s, e), e), e);
    }
    return total;
}

struct interval {
    i64 residue, start, end;
};

static int by_residue_then_start(const void *x, const void *y)
{
    const struct interval *a = x, *b = y;
    if (a->residue != b->residue) return a->residue < b->residue ? -1 : 1;
    return (a->start > b->start) - (a->start < b->start);
}

/* Distinct members inside [0, window) of the progressions {base[t] + step*i : 0 <= i < count[t]}:
 * within a residue class modulo step they are intervals, merged after sorting. */
static i64 progression_union(const i64 *base, i64 step, const i64 *count, i64 taps, i64 window, int *e)
{
    struct interval iv[MAX_TAPS];
    i64 n = 0;
    for (i64 t = 0; t < taps; t++) {
        i64 lo = max_(0, cdiv_(neg_(base[t], e), step, e), e);
        i64 hi = min_(count[t], add_(fdiv_(add_(add_(window, -1, e), neg_(base[t], e), e), step, e), 1, e), e);
        if (hi > lo) {
            i64 residue = mod_(base[t], step, e);
            i64 unit = fdiv_(add_(base[t], neg_(residue, e), e), step, e);
            iv[n].residue = residue;
            iv[n].start = add_(unit, lo, e);
            iv[n].end = add_(unit, hi, e);
            n++;
        }
    }
    if (*e) return 0;
    qsort(iv, (size_t)n, sizeof iv[0], by_residue_then_start);
    i64 distinct = 0, reach = 0;
    for (i64 m = 0; m < n; m++) {
        if (m == 0 || iv[m].residue != iv[m - 1].residue) reach = iv[m].start;
        i64 from = iv[m].start > reach ? iv[m].start : reach;
        if (iv[m].end > from) distinct = add_(distinct, iv[m].end - from, e);
        if (iv[m].end > reach) reach = iv[m].end;
    }
    return distinct;
}

/* Z of a transposed axis: output positions j = i*s + t*d - p, 0 <= j < L_out */
static i64 transposed_coverage(i64 L, i64 k, i64 s, i64 p, i64 d, i64 L_out, int *e)
{
    i64 base[MAX_TAPS], count[MAX_TAPS];
    if (k > MAX_TAPS) {
        *e = 1;
        return 0;
    }
    for (i64 t = 0; t < k; t++) {
        base[t] = add_(mul_(t, d, e), neg_(p, e), e);
        count[t] = L;
    }
    return progression_union(base, s, count, k, L_out, e);
}

/* Z of a plain axis: output positions j with some tap t reading 0 <= j*s + t*d - p < L */
static i64 plain_coverage(i64 L, i64 k, i64 s, i64 p, i64 d, i64 L_out, int *e)
{
    i64 base[MAX_TAPS], count[MAX_TAPS];
    if (k > MAX_TAPS) {
        *e = 1;
        return 0;
    }
    for (i64 t = 0; t < k; t++) {
        i64 offset = add_(p, neg_(mul_(t, d, e), e), e);
        base[t] = cdiv_(offset, s, e);
        count[t] = max_(0, add_(add_(fdiv_(add_(add_(L, -1, e), offset, e), s, e), neg_(base[t], e), e), 1, e), e);
    }
    return progression_union(base, 1, count, k, L_out, e);
}

/* --- the generated formulas ---------------------------------------------------- */

struct additions_form {
    i64 (*fn)(const i64 *L, const i64 *Lo, const i64 *k, const i64 *S, const i64 *Z, int *e);
    int needs_S, needs_Z;
};

#include "_native_generated.h"

/* --- binding ----------------------------------------------------------------------- */

/* An exact int that fits in int64, as an int64; 0 if it is anything else. */
static int exact_int(PyObject *o, i64 *out)
{
    int overflow;
    if (!PyLong_CheckExact(o)) return 0;
    *out = PyLong_AsLongLongAndOverflow(o, &overflow);
    return !overflow && !(*out == -1 && PyErr_Occurred());
}

/* An int broadcast to ndim axes, or a tuple or list of ndim exact ints; 0 otherwise. */
static int axis_values(PyObject *o, Py_ssize_t ndim, i64 *out)
{
    if (PyLong_CheckExact(o)) {
        if (!exact_int(o, &out[0])) return 0;
        for (Py_ssize_t a = 1; a < ndim; a++) out[a] = out[0];
        return 1;
    }
    if (!(PyTuple_CheckExact(o) || PyList_CheckExact(o)) || PySequence_Fast_GET_SIZE(o) != ndim) return 0;
    PyObject **items = PySequence_Fast_ITEMS(o);
    for (Py_ssize_t a = 0; a < ndim; a++)
        if (!exact_int(items[a], &out[a])) return 0;
    return 1;
}

static int convention_index(PyObject *name)
{
    if (!PyUnicode_CheckExact(name)) return -1;
    for (int c = 0; c < (int)(sizeof CONVENTION_NAMES / sizeof CONVENTION_NAMES[0]); c++)
        if (PyUnicode_CompareWithASCIIString(name, CONVENTION_NAMES[c]) == 0) return c;
    return -1;
}

PyDoc_STRVAR(additions_doc,
"additions_per_filter(input_size, kernel_size, stride, padding, dilation, output_padding, convention, transposed)\n"
"--\n\n"
"symconv.additions_per_filter on exact ints, or None where the Python path must answer\n"
"(anything that is not an exact int, a parameter torch rejects, or an int64 overflow).");

static PyObject *additions_per_filter(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "expected 8 arguments, got %zd", nargs);
        return NULL;
    }
    i64 L[MAX_AXES], k[MAX_AXES], s[MAX_AXES], p[MAX_AXES], d[MAX_AXES], op[MAX_AXES];
    i64 Lo[MAX_AXES], S[MAX_AXES], Z[MAX_AXES];
    Py_ssize_t ndim;
    if (PyLong_CheckExact(args[0]))
        ndim = 1;
    else if (PyTuple_CheckExact(args[0]) || PyList_CheckExact(args[0]))
        ndim = PySequence_Fast_GET_SIZE(args[0]);
    else
        Py_RETURN_NONE;
    int convention = convention_index(args[6]);
    if (ndim < 1 || ndim > MAX_AXES || convention < 0 || (args[7] != Py_True && args[7] != Py_False))
        Py_RETURN_NONE;
    int transposed = args[7] == Py_True;
    if (!axis_values(args[0], ndim, L) || !axis_values(args[1], ndim, k) || !axis_values(args[2], ndim, s) ||
        !axis_values(args[3], ndim, p) || !axis_values(args[4], ndim, d) || !axis_values(args[5], ndim, op))
        Py_RETURN_NONE;
    const struct additions_form *form = &ADDITIONS[transposed][ndim - 1][convention];
    int e = 0;
    for (Py_ssize_t a = 0; a < ndim; a++) {
        /* torch's rules (generated); a layer it rejects gets its message from the Python path */
        int accepted = transposed ? t_accepts(L[a], k[a], s[a], p[a], d[a], op[a], &e)
                                  : op[a] == 0 && p_accepts(L[a], k[a], s[a], p[a], d[a], &e);
        if (e || !accepted) Py_RETURN_NONE;
        Lo[a] = transposed ? t_L_out(L[a], k[a], s[a], p[a], d[a], op[a], &e) : p_L_out(L[a], k[a], s[a], p[a], d[a], &e);
        if (e) Py_RETURN_NONE;
        if (transposed) {
            S[a] = form->needs_S ? t_S(L[a], k[a], s[a], p[a], d[a], op[a], &e) : 0;
            Z[a] = form->needs_Z ? t_Z(L[a], k[a], s[a], p[a], d[a], op[a], &e) : 0;
        } else {
            S[a] = form->needs_S ? p_S(L[a], k[a], s[a], p[a], d[a], &e) : 0;
            Z[a] = form->needs_Z ? p_Z(L[a], k[a], s[a], p[a], d[a], &e) : 0;
        }
        if (e) Py_RETURN_NONE;
    }
    i64 value = form->fn(L, Lo, k, S, Z, &e);
    if (e) Py_RETURN_NONE;
    return PyLong_FromLongLong(value);
}

/* --- the exact counters over rows of int64 arrays ------------------------------------ */

#define MAX_COUNTER_ARGS 6

static const struct {
    const char *name;
    int nargs;
} COUNTERS[] = {{"lattice_count", 5}, {"transposed_coverage", 6}, {"plain_coverage", 6}};

static i64 count_row(int counter, const i64 *a, int *e)
{
    switch (counter) {
    case 0: return lattice_count(a[0], a[1], a[2], a[3], a[4], e);
    case 1: return transposed_coverage(a[0], a[1], a[2], a[3], a[4], a[5], e);
    default: return plain_coverage(a[0], a[1], a[2], a[3], a[4], a[5], e);
    }
}

/* A C-contiguous buffer of n int64 items (bool ones for the failed column); 0 with an exception set otherwise. */
static int column(PyObject *o, Py_buffer *view, int writable, Py_ssize_t itemsize, Py_ssize_t *n)
{
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return 0;
    const char *format = view->format ? view->format : "B";
    int integer = itemsize == 1 ? strcmp(format, "?") == 0 : (strcmp(format, "l") == 0 || strcmp(format, "q") == 0);
    if (!integer || view->itemsize != itemsize || (*n >= 0 && view->len / itemsize != *n)) {
        PyErr_SetString(PyExc_ValueError, "columns must be contiguous, of one length, int64 (bool for failed)");
        PyBuffer_Release(view);
        return 0;
    }
    *n = view->len / itemsize;
    return 1;
}

PyDoc_STRVAR(count_rows_doc,
"count_rows(counter, out, failed, *columns)\n"
"--\n\n"
"One of the exact counters (lattice_count, transposed_coverage, plain_coverage) on every\n"
"row of int64 columns, into the int64 array out. Rows it cannot count in int64 (an\n"
"overflow, or more than 256 taps where taps are sorted) are marked in the bool array\n"
"failed and left for the NumPy counters.");

static PyObject *count_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int counter = -1;
    if (nargs >= 1 && PyUnicode_Check(args[0]))
        for (int c = 0; c < (int)(sizeof COUNTERS / sizeof COUNTERS[0]); c++)
            if (PyUnicode_CompareWithASCIIString(args[0], COUNTERS[c].name) == 0) counter = c;
    if (counter < 0 || nargs != 3 + COUNTERS[counter].nargs) {
        PyErr_SetString(PyExc_TypeError, "count_rows(counter, out, failed, *columns): unknown counter "
                                         "or wrong number of columns");
        return NULL;
    }
    int ncols = COUNTERS[counter].nargs;
    Py_buffer out, failed, cols[MAX_COUNTER_ARGS];
    Py_ssize_t n = -1;
    if (!column(args[1], &out, 1, sizeof(i64), &n)) return NULL;
    if (!column(args[2], &failed, 1, 1, &n)) {
        PyBuffer_Release(&out);
        return NULL;
    }
    int got = 0;
    while (got < ncols && column(args[3 + got], &cols[got], 0, sizeof(i64), &n)) got++;
    if (got == ncols) {
        i64 *o = out.buf;
        char *f = failed.buf;
        i64 row[MAX_COUNTER_ARGS];
        for (Py_ssize_t i = 0; i < n; i++) {
            int e = 0;
            for (int c = 0; c < ncols; c++) row[c] = ((const i64 *)cols[c].buf)[i];
            o[i] = count_row(counter, row, &e);
            f[i] = (char)e;
        }
    }
    for (int c = 0; c < got; c++) PyBuffer_Release(&cols[c]);
    PyBuffer_Release(&failed);
    PyBuffer_Release(&out);
    if (got < ncols) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"additions_per_filter", (PyCFunction)(void (*)(void))additions_per_filter, METH_FASTCALL, additions_doc},
    {"count_rows", (PyCFunction)(void (*)(void))count_rows, METH_FASTCALL, count_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "symconv.numeric._native",
    "Compiled rendering of symconv's overlap hybrids (see symconv/numeric/codegen.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModule_Create(&module);
}
