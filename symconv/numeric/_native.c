/* symconv.numeric._native: the compiled path of symconv.additions_per_filter, of a layer's counts and
 * input check (count_layers, Layer.check_input), and of the exact counters over rows.
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

/* --- checked arithmetic: *e = 1 on overflow or a zero divisor ----------------- */

typedef __int128 i128;

/* name(a, b, e): a op b in type T, *e = 1 when it overflows */
#define CHECKED(T, name, builtin)                         \
    static inline T name(T a, T b, int *e)               \
    {                                                     \
        T r;                                              \
        if (builtin(a, b, &r)) *e = 1;                    \
        return r;                                         \
    }

CHECKED(i64, add_, __builtin_add_overflow)
CHECKED(i64, mul_, __builtin_mul_overflow)
CHECKED(i128, add128, __builtin_add_overflow)
CHECKED(i128, mul128, __builtin_mul_overflow)

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

/* --- exact counters (symconv/core/counters.py), O(log) ------------------------
 * The same algorithms as the Python counters, in 128-bit arithmetic with every
 * multiplication and addition checked; a result outside int64 sets *e. */

static inline i128 fdiv128(i128 a, i128 b)
{
    i128 q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
    return q;
}

static inline i128 cdiv128(i128 a, i128 b) { return -fdiv128(-a, b); }
static inline i128 min128(i128 a, i128 b) { return a < b ? a : b; }
static inline i128 max128(i128 a, i128 b) { return a > b ? a : b; }

static inline i64 narrow(i128 v, int *e)
{
    if (v > LLONG_MAX || v < LLONG_MIN) {
        *e = 1;
        return 0;
    }
    return (i64)v;
}

/* sum_{u=0}^{n-1} floor((a*u + b)/m), n >= 0, m >= 1: Euclid's algorithm on the points under a line */
static i128 floor_sum(i128 n, i128 m, i128 a, i128 b, int *e)
{
    i128 total = 0;
    while (n > 0 && !*e) {
        i128 q = fdiv128(a, m);
        total = add128(total, mul128(mul128(n, n - 1, e) / 2, q, e), e);
        a -= q * m;
        q = fdiv128(b, m);
        total = add128(total, mul128(n, q, e), e);
        b -= q * m;
        i128 top = add128(mul128(a, n, e), b, e);
        if (top < m) break;
        i128 next_n = top / m, next_b = top % m;
        n = next_n;
        b = next_b;
        i128 t = m;
        m = a;
        a = t;
    }
    return total;
}

/* A(q) = #{(i, t) : 0 <= i < n, 0 <= t < k, i*s + t*d < q} */
static i128 lattice128(i128 q, i128 n, i128 k, i128 s, i128 d, int *e)
{
    if (q <= 0 || n <= 0 || k <= 0) return 0;
    i128 taps = min128(k, cdiv128(q, d));
    i128 full = min128(taps, max128(0, cdiv128(q - mul128(n - 1, s, e), d)));
    i128 rest = floor_sum(taps - full, s, d, add128(q - mul128(taps - 1, d, e), s - 1, e), e);
    return add128(mul128(full, n, e), rest, e);
}

static i64 lattice_count(i64 q, i64 n, i64 k, i64 s, i64 d, int *e)
{
    return narrow(lattice128(q, n, k, s, d, e), e);
}

/* #{(i, t) : i0 <= i < i0 + n, t0 <= t < t0 + k, q0 <= i*s + t*d < q1} */
static i128 rectangle(i128 q0, i128 q1, i128 i0, i128 n, i128 t0, i128 k, i128 s, i128 d, int *e)
{
    i128 shift = add128(mul128(i0, s, e), mul128(t0, d, e), e);
    return lattice128(q1 - shift, n, k, s, d, e) - lattice128(q0 - shift, n, k, s, d, e);
}

/* Z of a transposed axis: one pair (i, t) per output position, those with t < s' or i >= L - d' */
static i64 transposed_coverage(i64 L, i64 k, i64 s, i64 p, i64 d, i64 L_out, int *e)
{
    if (L <= 0 || k <= 0 || L_out <= 0) return 0;
    i128 g = gcd(s, d, e), s1 = s / g, d1 = d / g;
    i128 end = (i128)p + L_out;
    i128 z = rectangle(p, end, 0, L, 0, min128(s1, k), s, d, e);
    if (k > s1) {
        i128 low = max128(0, (i128)L - d1);
        z = add128(z, rectangle(p, end, low, L - low, s1, k - s1, s, d, e), e);
    }
    return narrow(z, e);
}

/* Z of a plain axis: outputs whose taps x = j*s - p + t*d reach [0, L) */
static i64 plain_coverage(i64 L, i64 k, i64 s, i64 p, i64 d, i64 L_out, int *e)
{
    if (L <= 0 || k <= 0 || L_out <= 0) return 0;
    i128 inside = max128(0, min128((i128)L_out - 1, fdiv128((i128)L - 1 + p, s)) - max128(0, cdiv128(p, s)) + 1);
    i128 low = max128(0, cdiv128((i128)p - mul128(k - 1, d, e), s));
    i128 count = min128((i128)L_out - 1, cdiv128(p, s) - 1) - low + 1;
    if (count <= 0) return narrow(inside, e);
    if (L >= d) return narrow(add128(inside, count, e), e);
    i128 start = mul128(low, s, e) - p;
    return narrow(inside + floor_sum(count, d, s, start, e) - floor_sum(count, d, s, start - L, e), e);
}

/* taps t with some a*s + t*d - p in [0, W), a < n: a plain coverage with taps and positions exchanged */
static i64 tap_coverage(i64 n, i64 k, i64 s, i64 p, i64 d, i64 W, int *e)
{
    return plain_coverage(W, n, d, p, s, k, e);
}

/* --- the generated formulas ---------------------------------------------------- */

struct form {
    i64 (*fn)(const i64 *ch, const i64 *L, const i64 *Lo, const i64 *k, const i64 *S, const i64 *Z, int *e);
    int needs_S, needs_Z;
};

#include "_native_generated.h"

enum { DONE = 0, OVERFLOW = 1, REJECTED = 2 };

/* torch's rules on a layer and input, then each axis' output size, S and Z (where asked for).
 * ch = (N, C_in, C_out, groups); per-axis arrays of ndim. Returns DONE, OVERFLOW or REJECTED. */
static int layer_axes(int transposed, Py_ssize_t ndim, int needs_S, int needs_Z, const i64 *ch, const i64 *L,
                      const i64 *k, const i64 *s, const i64 *p, const i64 *d, const i64 *op, i64 *Lo, i64 *S, i64 *Z)
{
    int e = 0;
    if (!layer_accepts(ch[0], ch[1], ch[2], ch[3], &e) || e) return REJECTED;
    for (Py_ssize_t a = 0; a < ndim; a++) {
        /* torch's rules (generated); a layer it rejects gets its message from the Python path */
        int accepted = transposed ? t_accepts(L[a], k[a], s[a], p[a], d[a], op[a], &e)
                                  : op[a] == 0 && p_accepts(L[a], k[a], s[a], p[a], d[a], &e);
        if (e || !accepted) return REJECTED;
    }
    for (Py_ssize_t a = 0; a < ndim; a++) {
        if (transposed) {
            Lo[a] = t_L_out(L[a], k[a], s[a], p[a], d[a], op[a], &e);
            S[a] = needs_S ? t_S(L[a], k[a], s[a], p[a], d[a], op[a], &e) : 0;
            Z[a] = needs_Z ? t_Z(L[a], k[a], s[a], p[a], d[a], op[a], &e) : 0;
        } else {
            Lo[a] = p_L_out(L[a], k[a], s[a], p[a], d[a], &e);
            S[a] = needs_S ? p_S(L[a], k[a], s[a], p[a], d[a], &e) : 0;
            Z[a] = needs_Z ? p_Z(L[a], k[a], s[a], p[a], d[a], &e) : 0;
        }
    }
    return e ? OVERFLOW : DONE;
}

/* One layer's quantity: torch's rules, then the output sizes, S and Z where the form
 * needs them, then the form. */
static i64 evaluate_layer(int transposed, Py_ssize_t ndim, const struct form *form, const i64 *ch, const i64 *L,
                          const i64 *k, const i64 *s, const i64 *p, const i64 *d, const i64 *op, int *status)
{
    i64 Lo[MAX_AXES], S[MAX_AXES], Z[MAX_AXES];
    int e = 0;
    *status = layer_axes(transposed, ndim, form->needs_S, form->needs_Z, ch, L, k, s, p, d, op, Lo, S, Z);
    if (*status != DONE) return 0;
    i64 value = form->fn(ch, L, Lo, k, S, Z, &e);
    if (e) {
        *status = OVERFLOW;
        return 0;
    }
    return value;
}

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

/* A layer's six per-axis arguments in order (input size, kernel_size, stride, padding, dilation,
 * output_padding), each as axis_values takes it; 0 if any is not. */
static int layer_axis_values(PyObject *const *args, Py_ssize_t ndim, i64 *L, i64 *k, i64 *s, i64 *p, i64 *d,
                             i64 *op)
{
    i64 *out[6] = {L, k, s, p, d, op};
    for (int i = 0; i < 6; i++)
        if (!axis_values(args[i], ndim, out[i])) return 0;
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
    if (!layer_axis_values(args, ndim, L, k, s, p, d, op)) Py_RETURN_NONE;
    static const i64 one[4] = {1, 1, 1, 1};
    int status;
    i64 value = evaluate_layer(transposed, ndim, &FORMS[transposed][ndim - 1][convention][Q_ADDITIONS], one, L, k, s,
                               p, d, op, &status);
    if (status != DONE) Py_RETURN_NONE;
    return PyLong_FromLongLong(value);
}

PyDoc_STRVAR(layer_counts_doc,
"layer_counts(transposed, channels, input_size, kernel_size, stride, padding, dilation, output_padding, bias,\n"
"             conventions)\n"
"--\n\n"
"A zero-padded layer on an input, channels = (N, C_in, C_out, groups) and a tuple of ints per axis:\n"
"(output size, ((psi, multiplications, additions, lambda, gamma, total, unreached), ...) one per convention\n"
"name, none for no name: the output size of a checked layer), where unreached is the output elements no\n"
"product reaches (docs, transposed; else 0). None where the Python path must answer: anything but exact ints,\n"
"a layer torch rejects, an int64 overflow.");

static PyObject *layer_counts(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 10) {
        PyErr_Format(PyExc_TypeError, "expected 10 arguments, got %zd", nargs);
        return NULL;
    }
    if ((args[0] != Py_True && args[0] != Py_False) || (args[8] != Py_True && args[8] != Py_False) ||
        !PyTuple_CheckExact(args[1]) || PyTuple_GET_SIZE(args[1]) != 4 || !PyTuple_CheckExact(args[2]) ||
        !PyTuple_CheckExact(args[9]))
        Py_RETURN_NONE;
    int transposed = args[0] == Py_True, bias = args[8] == Py_True;
    Py_ssize_t ndim = PyTuple_GET_SIZE(args[2]), count = PyTuple_GET_SIZE(args[9]);
    i64 ch[4], L[MAX_AXES], k[MAX_AXES], s[MAX_AXES], p[MAX_AXES], d[MAX_AXES], op[MAX_AXES];
    if (ndim < 1 || ndim > MAX_AXES || !axis_values(args[1], 4, ch) ||
        !layer_axis_values(args + 2, ndim, L, k, s, p, d, op))
        Py_RETURN_NONE;
    int conventions[3];
    if (count > 3) Py_RETURN_NONE;
    for (Py_ssize_t c = 0; c < count; c++)
        if ((conventions[c] = convention_index(PyTuple_GET_ITEM(args[9], c))) < 0) Py_RETURN_NONE;
    static const int picked[2][6] = {{Q_PSI, Q_MULTIPLICATIONS, Q_ADDITIONS, Q_LAMBDA, Q_GAMMA_NOBIAS, Q_TOTAL_NOBIAS},
                                     {Q_PSI, Q_MULTIPLICATIONS, Q_ADDITIONS, Q_LAMBDA, Q_GAMMA, Q_TOTAL}};
    int needs_S = 0, needs_Z = 0, unreached[3];  /* only the axis counts the conventions use (macs: neither) */
    for (Py_ssize_t c = 0; c < count; c++) {
        const struct form *forms = FORMS[transposed][ndim - 1][conventions[c]];
        unreached[c] = transposed && strcmp(CONVENTION_NAMES[conventions[c]], "docs") == 0;
        needs_Z |= unreached[c];
        for (int q = 0; q < 6; q++) {
            needs_S |= forms[picked[bias][q]].needs_S;
            needs_Z |= forms[picked[bias][q]].needs_Z;
        }
    }
    i64 Lo[MAX_AXES], S[MAX_AXES], Z[MAX_AXES], values[3][7];
    if (layer_axes(transposed, ndim, needs_S, needs_Z, ch, L, k, s, p, d, op, Lo, S, Z) != DONE) Py_RETURN_NONE;
    int e = 0;
    for (Py_ssize_t c = 0; c < count; c++) {
        const struct form *forms = FORMS[transposed][ndim - 1][conventions[c]];
        for (int q = 0; q < 6; q++) values[c][q] = forms[picked[bias][q]].fn(ch, L, Lo, k, S, Z, &e);
        i64 elements = 1, reached = 1;
        if (unreached[c])
            for (Py_ssize_t a = 0; a < ndim; a++) {
                elements = mul_(elements, Lo[a], &e);
                reached = mul_(reached, Z[a], &e);
            }
        values[c][6] = elements - reached;
    }
    if (e) Py_RETURN_NONE;
    PyObject *out = PyTuple_New(ndim), *rows = PyTuple_New(count);
    if (out == NULL || rows == NULL) goto fail;
    for (Py_ssize_t a = 0; a < ndim; a++) {
        PyObject *v = PyLong_FromLongLong(Lo[a]);
        if (v == NULL) goto fail;
        PyTuple_SET_ITEM(out, a, v);
    }
    for (Py_ssize_t c = 0; c < count; c++) {
        PyObject *row = PyTuple_New(7);
        if (row == NULL) goto fail;
        PyTuple_SET_ITEM(rows, c, row);
        for (int q = 0; q < 7; q++) {
            PyObject *v = PyLong_FromLongLong(values[c][q]);
            if (v == NULL) goto fail;
            PyTuple_SET_ITEM(row, q, v);
        }
    }
    PyObject *result = PyTuple_Pack(2, out, rows);
    Py_DECREF(out);
    Py_DECREF(rows);
    return result;
fail:
    Py_XDECREF(out);
    Py_XDECREF(rows);
    return NULL;
}

/* --- the exact counters over rows of int64 arrays ------------------------------------ */

#define MAX_COUNTER_ARGS 6

static const struct {
    const char *name;
    int nargs;
} COUNTERS[] = {{"lattice_count", 5}, {"transposed_coverage", 6}, {"plain_coverage", 6}, {"tap_coverage", 6}};

static i64 count_row(int counter, const i64 *a, int *e)
{
    switch (counter) {
    case 0: return lattice_count(a[0], a[1], a[2], a[3], a[4], e);
    case 1: return transposed_coverage(a[0], a[1], a[2], a[3], a[4], a[5], e);
    case 2: return plain_coverage(a[0], a[1], a[2], a[3], a[4], a[5], e);
    default: return tap_coverage(a[0], a[1], a[2], a[3], a[4], a[5], e);
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

#define MAX_COLUMNS (4 + 6 * MAX_AXES)

/* The out (int64) and failed (bool) arrays and ncols int64 columns, all of one length n:
 * 1 with every buffer held, or 0 with an exception set and none held. */
static int acquire(PyObject *const *args, int ncols, Py_buffer *out, Py_buffer *failed, Py_buffer *cols,
                   Py_ssize_t *n)
{
    *n = -1;
    if (!column(args[0], out, 1, sizeof(i64), n)) return 0;
    if (!column(args[1], failed, 1, 1, n)) {
        PyBuffer_Release(out);
        return 0;
    }
    int got = 0;
    while (got < ncols && column(args[2 + got], &cols[got], 0, sizeof(i64), n)) got++;
    if (got == ncols) return 1;
    while (got > 0) PyBuffer_Release(&cols[--got]);
    PyBuffer_Release(failed);
    PyBuffer_Release(out);
    return 0;
}

static void release(Py_buffer *out, Py_buffer *failed, Py_buffer *cols, int ncols)
{
    for (int c = 0; c < ncols; c++) PyBuffer_Release(&cols[c]);
    PyBuffer_Release(failed);
    PyBuffer_Release(out);
}

PyDoc_STRVAR(count_rows_doc,
"count_rows(counter, out, failed, *columns)\n"
"--\n\n"
"One of the exact counters (lattice_count, transposed_coverage, plain_coverage,\n"
"tap_coverage) on every row of int64 columns, into the int64 array out. Rows whose\n"
"count does not fit int64 are marked in the bool array failed and left for Python ints.");

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
    Py_ssize_t n;
    if (!acquire(args + 1, ncols, &out, &failed, cols, &n)) return NULL;
    i64 *o = out.buf;
    char *f = failed.buf;
    i64 row[MAX_COUNTER_ARGS];
    for (Py_ssize_t i = 0; i < n; i++) {
        int e = 0;
        for (int c = 0; c < ncols; c++) row[c] = ((const i64 *)cols[c].buf)[i];
        o[i] = count_row(counter, row, &e);
        f[i] = (char)e;
    }
    release(&out, &failed, cols, ncols);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(evaluate_rows_doc,
"evaluate_rows(transposed, ndim, convention, quantity, out, failed, *columns)\n"
"--\n\n"
"A layer quantity (psi, multiplications, additions, lambda, gamma, gamma_nobias, total,\n"
"total_nobias) on every row of int64 columns in CostModel.parameters() order: N, C_in,\n"
"C_out, groups, then input sizes, kernel sizes, strides, paddings, dilations (and output\n"
"paddings), each axis by axis. Writes int64 out; marks in the bool array failed the rows\n"
"past int64, left for Python ints. Returns None, or the index of the first row torch\n"
"rejects (the validator then names the rule), with nothing after it computed.");

static PyObject *evaluate_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs < 6) {
        PyErr_SetString(PyExc_TypeError, "evaluate_rows(transposed, ndim, convention, quantity, out, failed, *columns)");
        return NULL;
    }
    int transposed = PyObject_IsTrue(args[0]);
    Py_ssize_t ndim = PyLong_AsSsize_t(args[1]);
    int convention = convention_index(args[2]);
    int quantity = -1;
    if (PyUnicode_Check(args[3]))
        for (int q = 0; q < (int)(sizeof QUANTITY_NAMES / sizeof QUANTITY_NAMES[0]); q++)
            if (PyUnicode_CompareWithASCIIString(args[3], QUANTITY_NAMES[q]) == 0) quantity = q;
    int fields = transposed ? 6 : 5;
    if (transposed < 0 || ndim < 1 || ndim > MAX_AXES || convention < 0 || quantity < 0 ||
        nargs != 6 + 4 + fields * ndim) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "evaluate_rows: unknown layer, convention or quantity, "
                                             "or wrong number of columns");
        return NULL;
    }
    const struct form *form = &FORMS[transposed][ndim - 1][convention][quantity];
    int ncols = 4 + fields * (int)ndim;
    Py_buffer out, failed, cols[MAX_COLUMNS];
    Py_ssize_t n, rejected = -1;
    if (!acquire(args + 4, ncols, &out, &failed, cols, &n)) return NULL;
    const i64 *c[MAX_COLUMNS];
    for (int j = 0; j < ncols; j++) c[j] = cols[j].buf;
    i64 *o = out.buf;
    char *f = failed.buf;
    Py_BEGIN_ALLOW_THREADS
    i64 ch[4], L[MAX_AXES], k[MAX_AXES], s[MAX_AXES], p[MAX_AXES], d[MAX_AXES], op[MAX_AXES] = {0, 0, 0};
    i64 *per_axis[6] = {L, k, s, p, d, op};
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++) ch[j] = c[j][i];
        for (int field = 0; field < fields; field++)
            for (Py_ssize_t a = 0; a < ndim; a++) per_axis[field][a] = c[4 + field * ndim + a][i];
        int status;
        o[i] = evaluate_layer(transposed, ndim, form, ch, L, k, s, p, d, op, &status);
        if (status == REJECTED) {
            rejected = i;
            break;
        }
        f[i] = (char)(status == OVERFLOW);
    }
    Py_END_ALLOW_THREADS
    release(&out, &failed, cols, ncols);
    if (rejected >= 0) return PyLong_FromSsize_t(rejected);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"evaluate_rows", (PyCFunction)(void (*)(void))evaluate_rows, METH_FASTCALL, evaluate_rows_doc},
    {"additions_per_filter", (PyCFunction)(void (*)(void))additions_per_filter, METH_FASTCALL, additions_doc},
    {"layer_counts", (PyCFunction)(void (*)(void))layer_counts, METH_FASTCALL, layer_counts_doc},
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
