/* Optional accelerator for the HTTP request head (request_head.py has the rules).
 *
 *   fast_scope(parser, url, headers, conn, constants) -> dict | None
 *
 * The common request builds its ASGI scope here in one C call: HTTP/1.1, an origin-form target
 * without "#" or "%" in its path, exactly one Host header whose value has already passed
 * request_head's check, a method request_head has already seen, at most one Content-Length of
 * plain digits within --limit-request-body, and none of the header fields that ask for a rule
 * (Transfer-Encoding, Expect, Upgrade, X-Forwarded-*), on a server without --root-path.
 * Anything else returns None and read_request_head's Python rules decide, so every rule and
 * every error answer stays in one place: this function adds no rule of its own, it only
 * recognizes requests those rules would pass unchanged. Tests check it against the Python
 * path on generated heads (tests/http/test_request_head_fast.py).
 *
 * ``constants``: (ASGI_VERSION dict, METHODS dict, the good-hosts set, the "1.1" string).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *s_type, *s_http, *s_asgi, *s_http_version, *s_server, *s_client, *s_scheme,
    *s_method, *s_root_path, *s_path, *s_raw_path, *s_query_string, *s_headers, *s_state,
    *s_get_method, *s_get_http_version, *s_config, *s_server_addr, *s_lifespan_state,
    *s_limit_request_body;

#define NAME_IS(name, len, lit) ((len) == sizeof(lit) - 1 && memcmp((name), (lit), (len)) == 0)

/* 1: this header is one the Python rules must see; 0: any other field. Names arrive lower-case
 * (HTTPProtocol.on_header), as request_head's _REQUEST_HEADERS keys are. */
static int
needs_rules(const char *name, Py_ssize_t len)
{
    switch (len) {
    case 6:
        return NAME_IS(name, len, "expect");
    case 7:
        return NAME_IS(name, len, "upgrade");
    case 15:
        return NAME_IS(name, len, "x-forwarded-for");
    case 17:
        return NAME_IS(name, len, "transfer-encoding") || NAME_IS(name, len, "x-forwarded-proto");
    default:
        return 0;
    }
}

/* The one Host value (borrowed), or NULL when the head needs the Python rules; the one
 * Content-Length value, if any, in *length (borrowed). */
static PyObject *
plain_host(PyObject *headers, PyObject **length)
{
    PyObject *host = NULL;
    *length = NULL;
    Py_ssize_t n = PyList_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            return NULL;
        PyObject *name = PyTuple_GET_ITEM(item, 0);
        if (!PyBytes_CheckExact(name))
            return NULL;
        const char *s = PyBytes_AS_STRING(name);
        Py_ssize_t len = PyBytes_GET_SIZE(name);
        if (NAME_IS(s, len, "host")) {
            if (host != NULL)
                return NULL; /* a second Host: a 400 for the Python rules to give */
            host = PyTuple_GET_ITEM(item, 1);
            if (!PyBytes_CheckExact(host))
                return NULL;
        }
        else if (NAME_IS(s, len, "content-length")) {
            if (*length != NULL)
                return NULL; /* a second one: for the rules (and the parser) to refuse */
            *length = PyTuple_GET_ITEM(item, 1);
        }
        else if (needs_rules(s, len))
            return NULL;
    }
    return host;
}

/* 0 and the parts of an origin-form target, 1 when the Python rules must split it, -1 on
 * error. raw_path and query are new references. */
static int
split_target(PyObject *url, PyObject **raw_path, PyObject **query)
{
    const char *s = PyBytes_AS_STRING(url);
    Py_ssize_t len = PyBytes_GET_SIZE(url);
    if (len == 0 || s[0] != '/' || memchr(s, '#', (size_t)len) != NULL)
        return 1;
    const char *q = memchr(s, '?', (size_t)len);
    Py_ssize_t path_len = q == NULL ? len : (Py_ssize_t)(q - s);
    if (memchr(s, '%', (size_t)path_len) != NULL)
        return 1; /* percent-decoding: unquote_to_bytes's business */
    if (q == NULL) {
        Py_INCREF(url);
        *raw_path = url;
        *query = PyBytes_FromStringAndSize(NULL, 0);
    }
    else {
        *raw_path = PyBytes_FromStringAndSize(s, path_len);
        *query = PyBytes_FromStringAndSize(q + 1, len - path_len - 1);
    }
    if (*raw_path == NULL || *query == NULL) {
        Py_CLEAR(*raw_path);
        Py_CLEAR(*query);
        return -1;
    }
    return 0;
}

/* The scope's dict, keys in request_head's order; steals nothing. */
static PyObject *
new_scope(PyObject *const *values)
{
    PyObject *const keys[] = {s_type, s_asgi, s_http_version, s_server, s_client,
                              s_scheme, s_method, s_root_path, s_path, s_raw_path,
                              s_query_string, s_headers, s_state};
#if PY_VERSION_HEX < 0x030E0000
    PyObject *scope = _PyDict_NewPresized(13); /* no resize on the way (3.10-3.13 export it) */
#else
    PyObject *scope = PyDict_New();
#endif
    if (scope == NULL)
        return NULL;
    for (int i = 0; i < 13; i++) {
        if (PyDict_SetItem(scope, keys[i], values[i]) < 0) {
            Py_DECREF(scope);
            return NULL;
        }
    }
    return scope;
}

/* The scope from what the connection holds; NULL on error, Py_None if it needs the rules. */
static PyObject *
build(PyObject *conn, PyObject *config, PyObject *asgi, PyObject *version, PyObject *method,
      PyObject *url, PyObject *headers)
{
    PyObject *result = NULL, *raw_path = NULL, *query = NULL, *path = NULL;
    PyObject *root_path = NULL, *server = NULL, *client = NULL;
    PyObject *scheme = NULL, *state = NULL, *lifespan = NULL, *copy = NULL;

    int split = split_target(url, &raw_path, &query);
    if (split != 0) {
        if (split > 0)
            result = Py_NewRef(Py_None);
        return result;
    }
    if ((root_path = PyObject_GetAttr(config, s_root_path)) == NULL)
        goto done;
    if (!PyUnicode_CheckExact(root_path) || PyUnicode_GET_LENGTH(root_path) != 0) {
        result = Py_NewRef(Py_None); /* --root-path: the Python rules prefix it */
        goto done;
    }
    path = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw_path), PyBytes_GET_SIZE(raw_path),
                                "replace");
    if (path == NULL || (server = PyObject_GetAttr(conn, s_server_addr)) == NULL ||
        (client = PyObject_GetAttr(conn, s_client)) == NULL ||
        (scheme = PyObject_GetAttr(conn, s_scheme)) == NULL ||
        (state = PyObject_GetAttr(conn, s_state)) == NULL ||
        (lifespan = PyObject_GetAttr(state, s_lifespan_state)) == NULL)
        goto done;
    if (!PyDict_CheckExact(lifespan)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if ((copy = PyDict_Copy(lifespan)) == NULL)
        goto done;
    PyObject *const values[] = {s_http,    asgi, version,  server, client,  scheme, method,
                                root_path, path, raw_path, query,  headers, copy};
    result = new_scope(values);
done:
    Py_XDECREF(raw_path);
    Py_XDECREF(query);
    Py_XDECREF(path);
    Py_XDECREF(root_path);
    Py_XDECREF(server);
    Py_XDECREF(client);
    Py_XDECREF(scheme);
    Py_XDECREF(state);
    Py_XDECREF(lifespan);
    Py_XDECREF(copy);
    return result;
}

/* 1 when ``length`` is plain digits within the connection's body limit, as the rules would
 * pass it; 0 when the rules must decide (a 413, or a value they parse differently); -1 on
 * error. */
static int
length_within_limit(PyObject *length, PyObject *config)
{
    if (!PyBytes_CheckExact(length))
        return 0;
    const char *s = PyBytes_AS_STRING(length);
    Py_ssize_t len = PyBytes_GET_SIZE(length);
    if (len == 0 || len > 18)
        return 0;
    long long value = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        value = value * 10 + (s[i] - '0');
    }
    PyObject *limit = PyObject_GetAttr(config, s_limit_request_body);
    if (limit == NULL)
        return -1;
    int within = 0;
    if (limit == Py_None)
        within = 1;
    else if (PyLong_CheckExact(limit)) {
        int overflow = 0;
        long long most = PyLong_AsLongLongAndOverflow(limit, &overflow);
        if (most == -1 && PyErr_Occurred())
            within = -1;
        else
            within = overflow > 0 || (overflow == 0 && value <= most);
    }
    Py_DECREF(limit);
    return within;
}

/* The cached method string (borrowed) when it is known and the version is 1.1; else NULL with
 * no error set (the Python rules decide), or NULL with an error set. */
static PyObject *
known_method(PyObject *parser, PyObject *methods, PyObject *v11)
{
    PyObject *version = PyObject_CallMethodNoArgs(parser, s_get_http_version);
    if (version == NULL)
        return NULL;
    int same = PyUnicode_CheckExact(version) && PyUnicode_Compare(version, v11) == 0;
    Py_DECREF(version);
    if (!same)
        return NULL;
    PyObject *method_b = PyObject_CallMethodNoArgs(parser, s_get_method);
    if (method_b == NULL)
        return NULL;
    PyObject *method = PyDict_GetItemWithError(methods, method_b); /* borrowed */
    Py_DECREF(method_b);
    return method;
}

static PyObject *
fast_scope(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fast_scope takes 5 arguments");
        return NULL;
    }
    PyObject *parser = args[0], *url = args[1], *headers = args[2], *conn = args[3];
    PyObject *constants = args[4];
    if (!PyBytes_CheckExact(url) || !PyList_CheckExact(headers) ||
        !PyTuple_CheckExact(constants) || PyTuple_GET_SIZE(constants) != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "fast_scope(parser, url: bytes, headers: list, conn, constants: tuple)");
        return NULL;
    }
    PyObject *asgi = PyTuple_GET_ITEM(constants, 0), *methods = PyTuple_GET_ITEM(constants, 1);
    PyObject *good_hosts = PyTuple_GET_ITEM(constants, 2), *v11 = PyTuple_GET_ITEM(constants, 3);
    if (!PyDict_CheckExact(methods) || !PyAnySet_Check(good_hosts) || !PyUnicode_Check(v11)) {
        PyErr_SetString(PyExc_TypeError, "fast_scope: constants are (dict, dict, set, str)");
        return NULL;
    }
    PyObject *length;
    PyObject *host = plain_host(headers, &length);
    if (host == NULL)
        Py_RETURN_NONE;
    int good = PySet_Contains(good_hosts, host);
    if (good <= 0)
        return good < 0 ? NULL : Py_NewRef(Py_None);
    Py_XINCREF(length); /* what follows runs Python code (a property could) */
    PyObject *method = known_method(parser, methods, v11);
    if (method == NULL) {
        Py_XDECREF(length);
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    Py_INCREF(method); /* the dict could lose it while the scope is built */
    PyObject *scope = NULL;
    PyObject *config = PyObject_GetAttr(conn, s_config); /* read once, for both uses */
    if (config != NULL) {
        int within = length == NULL ? 1 : length_within_limit(length, config);
        if (within > 0)
            scope = build(conn, config, asgi, v11, method, url, headers);
        else if (within == 0)
            scope = Py_NewRef(Py_None);
        Py_DECREF(config);
    }
    Py_DECREF(method);
    Py_XDECREF(length);
    return scope;
}

static PyMethodDef methods[] = {
    {"fast_scope", (PyCFunction)(void (*)(void))fast_scope, METH_FASTCALL,
     "fast_scope(parser, url, headers, conn, constants) -> dict | None: the scope of a request "
     "the head rules would pass unchanged, or None for the rules to decide."},
    {NULL, NULL, 0, NULL},
};

static int
intern_all(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s_type, "type"},
        {&s_http, "http"},
        {&s_asgi, "asgi"},
        {&s_http_version, "http_version"},
        {&s_server, "server"},
        {&s_client, "client"},
        {&s_scheme, "scheme"},
        {&s_method, "method"},
        {&s_root_path, "root_path"},
        {&s_path, "path"},
        {&s_raw_path, "raw_path"},
        {&s_query_string, "query_string"},
        {&s_headers, "headers"},
        {&s_state, "state"},
        {&s_get_method, "get_method"},
        {&s_get_http_version, "get_http_version"},
        {&s_config, "config"},
        {&s_server_addr, "server_addr"},
        {&s_lifespan_state, "lifespan_state"},
        {&s_limit_request_body, "limit_request_body"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL &&
            (*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    }
    return 0;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "krandog_asgi.http._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (intern_all() < 0)
        return NULL;
    return PyModule_Create(&module);
}
