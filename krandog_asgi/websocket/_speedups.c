/* Optional accelerator for the WebSocket codec: apply_mask(data, mask) -> bytes.
 *
 * Masking is the one per-byte operation on the WebSocket path. Pure Python (big-integer XOR in
 * frames.py) is ~80x slower on 64 KiB payloads, so this 8-bytes-at-a-time loop is built when a
 * C compiler is present; frames.py falls back to Python otherwise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask(data, mask) takes exactly 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL)
        goto done;
    {
        const unsigned char *in = (const unsigned char *)data.buf;
        const unsigned char *m = (const unsigned char *)mask.buf;
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        Py_ssize_t n = data.len, i = 0;
        unsigned char m8[8];
        uint64_t m64, w;

        memcpy(m8, m, 4);
        memcpy(m8 + 4, m, 4);
        memcpy(&m64, m8, 8);
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, in + i, 8);
            w ^= m64;
            memcpy(out + i, &w, 8);
        }
        for (; i < n; i++)
            out[i] = in[i] ^ m[i & 3];
    }
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes: XOR data with the 4-byte mask repeated."},
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
