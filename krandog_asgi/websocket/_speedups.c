/* Optional accelerator for the WebSocket codec (frames.py has the pure-Python twins).
 *
 *   apply_mask(data, mask) -> bytes
 *   unmask(data, mask, start, end, phase) -> bytes        data[start:end] unmasked, one copy
 *   unmask_into(dst, data, start, end, mask, phase)       appends it to the bytearray dst
 *   scan_messages(data, pos, must_mask, max_size, limit, events) -> int
 *       the parser's fast path: whole single-frame messages from data[pos:] onto events
 *
 * Masking is the one per-byte operation on the WebSocket path. Pure Python (big-integer XOR in
 * frames.py) is ~80x slower on 64 KiB payloads. unmask/unmask_into also fold the slice of the
 * read buffer and the copy into the message buffer into the XOR pass itself, so a large frame is
 * copied once between the bytes uvloop read and the message the application gets. ``phase`` is
 * the payload offset (mod 4) at ``start``: a frame split across reads resumes mid-mask.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* out[i] = in[i] ^ mask[(i + phase) & 3], 8 bytes at a time. The counters are unsigned: with
 * Python's -fwrapv a signed "i + 8 <= n" may wrap, and gcc then does not vectorize the loop
 * (measured: 64 KiB took ~0.8 us longer). */
static void
xor_mask(unsigned char *out, const unsigned char *in, Py_ssize_t len, const unsigned char *mask,
         unsigned int phase)
{
    unsigned char m[4], m8[8];
    uint64_t m64, w;
    size_t n = (size_t)len, words = n / 8, i;

    for (int k = 0; k < 4; k++)
        m[k] = mask[(k + phase) & 3];
    memcpy(m8, m, 4);
    memcpy(m8 + 4, m, 4);
    memcpy(&m64, m8, 8);
    for (i = 0; i < words; i++) {
        memcpy(&w, in + 8 * i, 8);
        w ^= m64;
        memcpy(out + 8 * i, &w, 8);
    }
    for (i = words * 8; i < n; i++)
        out[i] = in[i] ^ m[i & 3];
}

static int
get_mask(PyObject *obj, Py_buffer *mask)
{
    if (PyObject_GetBuffer(obj, mask, PyBUF_SIMPLE) < 0)
        return -1;
    if (mask->len != 4) {
        PyBuffer_Release(mask);
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        return -1;
    }
    return 0;
}

/* start/end checked against the buffer's length, as a slice would be (but never clamped) */
static int
get_range(PyObject *const *args, Py_ssize_t len, Py_ssize_t *start, Py_ssize_t *end,
          unsigned int *phase)
{
    Py_ssize_t s = PyLong_AsSsize_t(args[0]), e = PyLong_AsSsize_t(args[1]);
    long p = PyLong_AsLong(args[2]);

    if ((s == -1 || e == -1 || p == -1) && PyErr_Occurred())
        return -1;
    if (s < 0 || e < s || e > len) {
        PyErr_SetString(PyExc_ValueError, "start and end must satisfy 0 <= start <= end <= len");
        return -1;
    }
    *start = s;
    *end = e;
    *phase = (unsigned int)(p & 3);
    return 0;
}

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask(data, mask) takes exactly 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_mask(args[1], &mask) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL)
        xor_mask((unsigned char *)PyBytes_AS_STRING(result), data.buf, data.len, mask.buf, 0);
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
unmask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    Py_ssize_t start, end;
    unsigned int phase;
    PyObject *result = NULL;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "unmask(data, mask, start, end, phase) takes 5 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_mask(args[1], &mask) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (get_range(args + 2, data.len, &start, &end, &phase) == 0) {
        result = PyBytes_FromStringAndSize(NULL, end - start);
        if (result != NULL)
            xor_mask((unsigned char *)PyBytes_AS_STRING(result),
                     (const unsigned char *)data.buf + start, end - start, mask.buf, phase);
    }
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
unmask_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    Py_ssize_t start, end, old;
    unsigned int phase;
    PyObject *dst, *result = NULL;

    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "unmask_into(dst, data, start, end, mask, phase) takes 6 arguments");
        return NULL;
    }
    dst = args[0];
    if (!PyByteArray_CheckExact(dst)) {
        PyErr_SetString(PyExc_TypeError, "unmask_into: dst must be a bytearray");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_mask(args[4], &mask) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    {
        PyObject *range[3] = {args[2], args[3], args[5]};
        if (get_range(range, data.len, &start, &end, &phase) < 0)
            goto done;
    }
    if (dst == args[1]) {
        PyErr_SetString(PyExc_ValueError, "unmask_into: dst and data must differ");
        goto done;
    }
    old = PyByteArray_GET_SIZE(dst);
    /* A bytearray with an exported buffer refuses to resize: that error is raised here. */
    if (PyByteArray_Resize(dst, old + (end - start)) < 0)
        goto done;
    xor_mask((unsigned char *)PyByteArray_AS_STRING(dst) + old,
             (const unsigned char *)data.buf + start, end - start, mask.buf, phase);
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return result;
}

/* The common frame, whole in the buffer: a final, uncompressed text or binary frame with the
 * masking the peer must use, within max_size. Its message (bytes, or str for valid UTF-8) goes
 * onto events and scanning goes on; at anything else (a control frame, a fragment, RSV bits, a
 * frame not complete yet, a protocol error, invalid UTF-8) it stops and returns the offset of
 * that frame, which connection.py then parses in Python with every rule and error message. So
 * this adds no rule of its own: it only skips the interpreter for frames that pass all of them.
 */
static Py_ssize_t
scan_one(const unsigned char *buf, Py_ssize_t pos, Py_ssize_t n, int must_mask,
         Py_ssize_t max_size, PyObject **message)
{
    const unsigned char *p = buf + pos;
    Py_ssize_t avail = n - pos, hlen, length;
    unsigned int b0, b1, opcode;
    int masked;

    *message = NULL;
    if (avail < 2)
        return 0;
    b0 = p[0];
    b1 = p[1];
    opcode = b0 & 0x0F;
    masked = (b1 & 0x80) != 0;
    if ((b0 & 0xF0) != 0x80 || (opcode != 1 && opcode != 2) || masked != (must_mask != 0))
        return 0;
    length = b1 & 0x7F;
    hlen = masked ? 6 : 2;
    if (length == 126) {
        hlen += 2;
        if (avail < hlen)
            return 0;
        length = ((Py_ssize_t)p[2] << 8) | p[3];
    }
    else if (length == 127) {
        uint64_t big = 0;
        hlen += 8;
        if (avail < hlen)
            return 0;
        for (int k = 2; k < 10; k++)
            big = (big << 8) | p[k];
        if (big > (uint64_t)(avail - hlen))
            return 0; /* not all here (or the top bit set): Python's path decides */
        length = (Py_ssize_t)big;
    }
    if (avail < hlen || length > avail - hlen || length > max_size)
        return 0;
    if (opcode == 1) {
        PyObject *text;
        if (masked) {
            unsigned char small[256];
            unsigned char *tmp = length <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc(length);
            if (tmp == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            xor_mask(tmp, p + hlen, length, p + hlen - 4, 0);
            text = PyUnicode_DecodeUTF8((const char *)tmp, length, NULL);
            if (tmp != small)
                PyMem_Free(tmp);
        }
        else
            text = PyUnicode_DecodeUTF8((const char *)p + hlen, length, NULL);
        if (text == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return -1;
            PyErr_Clear(); /* invalid UTF-8: Python's path raises the close with its reason */
            return 0;
        }
        *message = text;
    }
    else if (masked) {
        *message = PyBytes_FromStringAndSize(NULL, length);
        if (*message == NULL)
            return -1;
        xor_mask((unsigned char *)PyBytes_AS_STRING(*message), p + hlen, length, p + hlen - 4, 0);
    }
    else {
        *message = PyBytes_FromStringAndSize((const char *)p + hlen, length);
        if (*message == NULL)
            return -1;
    }
    return hlen + length;
}

static PyObject *
scan_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t pos, max_size, limit, taken;
    int must_mask;
    PyObject *events, *message, *result = NULL;

    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_messages(data, pos, must_mask, max_size, limit, events) takes 6 "
                        "arguments");
        return NULL;
    }
    events = args[5];
    if (!PyList_Check(events)) {
        PyErr_SetString(PyExc_TypeError, "scan_messages: events must be a list");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    max_size = PyLong_AsSsize_t(args[3]);
    limit = PyLong_AsSsize_t(args[4]);
    must_mask = PyObject_IsTrue(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (pos < 0 || pos > data.len) {
        PyErr_SetString(PyExc_ValueError, "scan_messages: pos must satisfy 0 <= pos <= len");
        goto done;
    }
    while (pos < data.len && PyList_GET_SIZE(events) < limit) {
        taken = scan_one(data.buf, pos, data.len, must_mask, max_size, &message);
        if (taken < 0)
            goto done;
        if (taken == 0)
            break;
        taken = PyList_Append(events, message) < 0 ? -1 : taken;
        Py_DECREF(message);
        if (taken < 0)
            goto done;
        pos += taken;
    }
    result = PyLong_FromSsize_t(pos);
done:
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes: XOR data with the 4-byte mask repeated."},
    {"unmask", (PyCFunction)(void (*)(void))unmask, METH_FASTCALL,
     "unmask(data, mask, start, end, phase) -> bytes: data[start:end] XOR the mask, which "
     "starts at byte phase % 4."},
    {"unmask_into", (PyCFunction)(void (*)(void))unmask_into, METH_FASTCALL,
     "unmask_into(dst, data, start, end, mask, phase): append data[start:end] XOR the mask "
     "(starting at byte phase % 4) to the bytearray dst."},
    {"scan_messages", (PyCFunction)(void (*)(void))scan_messages, METH_FASTCALL,
     "scan_messages(data, pos, must_mask, max_size, limit, events) -> int: append the whole "
     "single-frame messages at data[pos:] to events; returns where the first other frame "
     "starts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "krandog_asgi.websocket._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
