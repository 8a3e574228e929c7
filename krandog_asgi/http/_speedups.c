/* Optional accelerators for the HTTP request head (request_head.py has the rules) and the
 * response head (response.py's ResponseWriter.frame_head).
 *
 *   fast_scope(parser, url, headers, conn, constants) -> dict | None
 *   plain_request(data, pos, conn, constants) -> (scope, end) | None
 *   cached_head(writer, message, defaults, head_request, http10, body_unread, caches) -> bool
 *
 * fast_scope: the common request builds its ASGI scope here in one C call: HTTP/1.1, an
 * origin-form target without "#" or "%" in its path, exactly one Host header whose value has
 * already passed request_head's check, a method request_head has already seen, at most one
 * Content-Length of plain digits within --limit-request-body, and none of the header fields
 * that ask for a rule (Transfer-Encoding, Expect, Upgrade, X-Forwarded-*), on a server without
 * --root-path. Anything else returns None and read_request_head's Python rules decide, so every
 * rule and every error answer stays in one place: this function adds no rule of its own, it
 * only recognizes requests those rules would pass unchanged. Tests check it against the Python
 * path on generated heads (tests/http/test_request_head_fast.py).
 *
 * plain_request goes one step further for the request with no body at all (most GETs): it
 * reads the head itself from the bytes at ``pos``, with no parser, when the head is complete
 * and in a form llhttp would parse to the same method, target and header list, and the
 * rules would pass unchanged (fast_scope's conditions, no Content-Length, no Connection other
 * than keep-alive). ``end`` is the offset just past the head, where the next request starts.
 * Anything else returns None: the bytes go to llhttp as ever (HTTPProtocol.take_plain).
 *
 * cached_head frames a response head whose status line and header list frame_head has
 * already validated and rendered (its caches: response._HEADS, FINAL_STATUS_LINES), setting
 * the writer's fields as frame_head does; anything else (a first sight, an app's own Server or
 * Date, a 204 with a Content-Length, an IntEnum status) returns False and frame_head does it.
 *
 * ``constants``: (ASGI_VERSION dict, METHODS dict, the good-hosts set, the "1.1" string),
 * and for plain_request also the table of common header names (HTTPProtocol's).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *s_type, *s_http, *s_asgi, *s_http_version, *s_server, *s_client, *s_scheme,
    *s_method, *s_root_path, *s_path, *s_raw_path, *s_query_string, *s_headers, *s_state,
    *s_get_method, *s_get_http_version, *s_config, *s_server_addr, *s_lifespan_state,
    *s_limit_request_body, *s_limit_request_line, *s_limit_request_fields,
    *s_limit_request_headers, *s_status, *s_keep_alive, *s_chunked, *s_content_length,
    *s_no_body, *s_pending_head;

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
 * pass it, with its value in *out; 0 when the rules must decide (a 413, or a value they parse
 * differently); -1 on error. */
static int
length_within_limit(PyObject *length, PyObject *config, long long *out)
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
    *out = value;
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
        long long value;
        int within = length == NULL ? 1 : length_within_limit(length, config, &value);
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

/* -- plain_request: a request with no body or a Content-Length one, read without llhttp -- */

static unsigned char tchar[256]; /* RFC 9110 §5.6.2 token characters; filled at import */

static void
fill_tchar(void)
{
    const char *extra = "!#$%&'*+-.^_`|~";
    for (int c = '0'; c <= '9'; c++)
        tchar[c] = 1;
    for (int c = 'a'; c <= 'z'; c++)
        tchar[c] = tchar[c - 'a' + 'A'] = 1;
    for (const char *p = extra; *p; p++)
        tchar[(unsigned char)*p] = 1;
}

/* Past "METHOD /target HTTP/1.1\r\n", or NULL when the line is incomplete or in any form
 * other than the one llhttp and the rules agree on without a second look: an upper-case
 * method, single spaces, an origin-form target of visible ASCII without "#", HTTP/1.1. */
static const char *
read_request_line(const char *p, const char *end, Py_ssize_t *method_len, const char **target,
                  Py_ssize_t *target_len)
{
    const char *s = p;
    while (p < end && *p >= 'A' && *p <= 'Z')
        p++;
    *method_len = p - s;
    if (*method_len == 0 || *method_len > 20 || p == end || *p != ' ')
        return NULL;
    *target = ++p;
    while (p < end && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7F && *p != '#')
        p++;
    *target_len = p - *target;
    if (*target_len == 0 || **target != '/' || end - p < 11 ||
        memcmp(p, " HTTP/1.1\r\n", 11) != 0)
        return NULL;
    return p + 11;
}

/* Past one "name: value\r\n" line, or NULL when it is incomplete or not a plain field line:
 * a token name right before ":", a value of visible ASCII, spaces and tabs, CRLF, and no
 * obs-fold after it. The value comes without its surrounding whitespace, as llhttp and
 * on_header's rstrip give it. */
static const char *
read_field_line(const char *p, const char *end, const char **name, Py_ssize_t *name_len,
                const char **value, Py_ssize_t *value_len)
{
    *name = p;
    while (p < end && tchar[(unsigned char)*p])
        p++;
    *name_len = p - *name;
    if (*name_len == 0 || p == end || *p != ':')
        return NULL;
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    *value = p;
    while (p < end && (*p == '\t' || ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7F)))
        p++;
    const char *stop = p;
    while (stop > *value && (stop[-1] == ' ' || stop[-1] == '\t'))
        stop--;
    *value_len = stop - *value;
    if (end - p < 3 || p[0] != '\r' || p[1] != '\n' || p[2] == ' ' || p[2] == '\t')
        return NULL; /* (a complete head has at least its final CRLF after this line) */
    return p + 2;
}

static inline char
lower_ascii(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
equals_lower(const char *s, Py_ssize_t len, const char *lit)
{
    if ((size_t)len != strlen(lit))
        return 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (lower_ascii(s[i]) != lit[i])
            return 0;
    }
    return 1;
}

enum field_kind { FIELD_PLAIN, FIELD_HOST, FIELD_LENGTH, FIELD_REFUSED };

/* What a field (lower-case name) means here: Transfer-Encoding, the connection fields and the
 * rules' fields send the request to the parser; ``Connection: keep-alive`` alone is plain; a
 * Content-Length is the one body framing read here. */
static enum field_kind
field_kind(const char *name, Py_ssize_t len, const char *value, Py_ssize_t value_len)
{
    if (NAME_IS(name, len, "host"))
        return FIELD_HOST;
    if (NAME_IS(name, len, "content-length"))
        return FIELD_LENGTH;
    if (NAME_IS(name, len, "connection"))
        return equals_lower(value, value_len, "keep-alive") ? FIELD_PLAIN : FIELD_REFUSED;
    if (needs_rules(name, len) || NAME_IS(name, len, "proxy-connection"))
        return FIELD_REFUSED;
    return FIELD_PLAIN;
}

/* A new bytes object: ``name`` in lower case, as on_header stores names. */
static PyObject *
lower_name(const char *name, Py_ssize_t len)
{
    PyObject *lower = PyBytes_FromStringAndSize(NULL, len);
    if (lower == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(lower);
    for (Py_ssize_t i = 0; i < len; i++)
        out[i] = lower_ascii(name[i]);
    return lower;
}

/* The lower-case name as a new reference: the shared bytes of ``common`` (on_header's
 * table of usual spellings) when it has this spelling, else a new bytes object. */
static PyObject *
field_name(PyObject *common, const char *name, Py_ssize_t len)
{
    PyObject *sent = PyBytes_FromStringAndSize(name, len);
    if (sent == NULL)
        return NULL;
    PyObject *shared = PyDict_GetItemWithError(common, sent); /* borrowed */
    Py_DECREF(sent);
    if (shared != NULL && PyBytes_CheckExact(shared))
        return Py_NewRef(shared);
    return PyErr_Occurred() ? NULL : lower_name(name, len);
}

/* Appends (name, value) to ``headers``; the Host and Content-Length values (borrowed from
 * the list) in fields[0] and fields[1]. 0, 1 when the field sends the request to the parser,
 * -1 on error. */
static int
add_field(PyObject *headers, PyObject *common, const char *name, Py_ssize_t name_len,
          const char *value, Py_ssize_t value_len, PyObject **fields)
{
    PyObject *lower = field_name(common, name, name_len);
    if (lower == NULL)
        return -1;
    enum field_kind kind = field_kind(PyBytes_AS_STRING(lower), name_len, value, value_len);
    if (kind == FIELD_REFUSED || (kind == FIELD_HOST && fields[0] != NULL) ||
        (kind == FIELD_LENGTH && fields[1] != NULL)) {
        Py_DECREF(lower);
        return 1; /* (a second Host or Content-Length: a 400 for the rules or llhttp) */
    }
    PyObject *item = NULL, *val = PyBytes_FromStringAndSize(value, value_len);
    if (val != NULL)
        item = PyTuple_Pack(2, lower, val);
    Py_DECREF(lower);
    Py_XDECREF(val);
    if (item == NULL)
        return -1;
    int failed = PyList_Append(headers, item);
    Py_DECREF(item);
    if (kind == FIELD_HOST)
        fields[0] = val;
    else if (kind == FIELD_LENGTH)
        fields[1] = val;
    return failed;
}

/* The connection's head limits (--limit-request-line, -fields, -headers); -1 on error. */
static int
head_limits(PyObject *config, Py_ssize_t limits[3])
{
    PyObject *const names[3] = {s_limit_request_line, s_limit_request_fields,
                                s_limit_request_headers};
    for (int i = 0; i < 3; i++) {
        PyObject *value = PyObject_GetAttr(config, names[i]);
        if (value == NULL)
            return -1;
        limits[i] = PyLong_Check(value) ? PyLong_AsSsize_t(value) : -1;
        Py_DECREF(value);
        if (limits[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* The header list of the head whose field lines start at ``p``, the bytes they count for
 * --limit-request-headers in *size, the Host and Content-Length values (borrowed, or NULL) in
 * fields[0] and fields[1] and the head's end in *past; Py_None when the head needs the
 * parser; NULL on error. */
static PyObject *
read_fields(const char *p, const char *end, PyObject *common, Py_ssize_t max_fields,
            Py_ssize_t *size, PyObject **fields, const char **past)
{
    PyObject *headers = PyList_New(0);
    if (headers == NULL)
        return NULL;
    fields[0] = fields[1] = NULL;
    while (!(end - p >= 2 && p[0] == '\r' && p[1] == '\n')) {
        const char *name, *value;
        Py_ssize_t name_len, value_len;
        p = read_field_line(p, end, &name, &name_len, &value, &value_len);
        int refused = p == NULL || PyList_GET_SIZE(headers) >= max_fields;
        if (!refused)
            refused = add_field(headers, common, name, name_len, value, value_len, fields);
        if (refused) {
            Py_DECREF(headers);
            return refused < 0 ? NULL : Py_NewRef(Py_None);
        }
        *size += name_len + value_len + 4;
    }
    *past = p + 2;
    return headers;
}

/* The cached method string (borrowed) for the method bytes, or NULL: not seen by the rules. */
static PyObject *
seen_method(PyObject *methods, const char *name, Py_ssize_t len)
{
    Py_ssize_t i = 0;
    PyObject *key, *value;
    while (PyDict_Next(methods, &i, &key, &value)) {
        if (PyBytes_CheckExact(key) && PyBytes_GET_SIZE(key) == len &&
            memcmp(PyBytes_AS_STRING(key), name, (size_t)len) == 0)
            return value;
    }
    return NULL;
}

/* The body a Content-Length value frames from ``past``: 1 with a new bytes object in *body and
 * its end in *stop; 0 when the rules or the parser must see the request (a value they would
 * refuse or read otherwise, one over --limit-request-body, a body that does not end in this
 * read); -1 on error. */
static int
read_body(PyObject *length, PyObject *config, const char *past, const char *end,
          PyObject **body, const char **stop)
{
    long long size;
    int within = length_within_limit(length, config, &size);
    if (within <= 0)
        return within;
    if (size > end - past)
        return 0;
    if ((*body = PyBytes_FromStringAndSize(past, (Py_ssize_t)size)) == NULL)
        return -1;
    *stop = past + size;
    return 1;
}

/* (scope, end, body) for the request read from ``p`` (body None without a Content-Length);
 * Py_None when it needs the parser. */
static PyObject *
plain_scope(const char *start, const char *p, const char *end, PyObject *conn,
            PyObject *config, PyObject *const *consts)
{
    Py_ssize_t limits[3], method_len, target_len, size;
    const char *line = p, *target, *past;
    if (head_limits(config, limits) < 0)
        return NULL;
    p = read_request_line(p, end, &method_len, &target, &target_len);
    if (p == NULL || target_len > limits[0])
        Py_RETURN_NONE;
    PyObject *method = seen_method(consts[1], line, method_len);
    if (method == NULL)
        Py_RETURN_NONE;
    Py_INCREF(method);
    PyObject *fields[2], *result = NULL, *url = NULL, *scope = NULL, *body = NULL;
    size = target_len;
    PyObject *headers = read_fields(p, end, consts[4], limits[1], &size, fields, &past);
    if (headers == NULL || headers == Py_None) {
        result = headers;
        goto done;
    }
    int good = fields[0] == NULL || size > limits[2] ? 0 : PySet_Contains(consts[2], fields[0]);
    if (good > 0 && fields[1] != NULL)
        good = read_body(fields[1], config, past, end, &body, &past);
    if (good <= 0) {
        result = good < 0 ? NULL : Py_NewRef(Py_None);
        goto done;
    }
    if ((url = PyBytes_FromStringAndSize(target, target_len)) == NULL)
        goto done;
    scope = build(conn, config, consts[0], consts[3], method, url, headers);
    if (scope == NULL || scope == Py_None)
        result = Py_XNewRef(scope);
    else
        result = Py_BuildValue("(OnO)", scope, (Py_ssize_t)(past - start),
                               body == NULL ? Py_None : body);
done:
    Py_DECREF(method);
    Py_XDECREF(headers);
    Py_XDECREF(url);
    Py_XDECREF(scope);
    Py_XDECREF(body);
    return result;
}

static PyObject *
plain_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyLong_CheckExact(args[1]) || !PyTuple_CheckExact(args[3]) ||
        PyTuple_GET_SIZE(args[3]) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "plain_request(data: bytes, pos: int, conn, constants: tuple)");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0]))
        Py_RETURN_NONE; /* a transport's bytearray or view: the parser reads it */
    PyObject *const *consts = &PyTuple_GET_ITEM(args[3], 0);
    if (!PyDict_CheckExact(consts[1]) || !PyAnySet_Check(consts[2]) ||
        !PyUnicode_Check(consts[3]) || !PyDict_CheckExact(consts[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "plain_request: constants are (dict, dict, set, str, dict)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]), len = PyBytes_GET_SIZE(args[0]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    if (pos < 0 || pos > len) {
        PyErr_SetString(PyExc_ValueError, "plain_request: pos is outside data");
        return NULL;
    }
    PyObject *config = PyObject_GetAttr(args[2], s_config);
    if (config == NULL)
        return NULL;
    const char *start = PyBytes_AS_STRING(args[0]);
    PyObject *result = plain_scope(start, start + pos, start + len, args[2], config, consts);
    Py_DECREF(config);
    return result;
}

/* -- cached_head: a response head whose header list was rendered before ------------------- */

static const char CHUNKED_LINE[] = "transfer-encoding: chunked\r\n";
static const char CLOSE_LINE[] = "connection: close\r\n";
static const char KEEP_ALIVE_LINE[] = "connection: keep-alive\r\n";

/* The key of ``message``'s header list in the rendered-heads cache (a new reference), or NULL
 * with no error set when ResponseWriter.frame_head must read the list itself. */
static PyObject *
headers_key(PyObject *message)
{
    PyObject *headers = PyDict_GetItemWithError(message, s_headers); /* borrowed */
    if (headers == NULL)
        return PyErr_Occurred() ? NULL : PyTuple_New(0);
    if (PyTuple_CheckExact(headers))
        return Py_NewRef(headers);
    if (PyList_CheckExact(headers))
        return PyList_AsTuple(headers);
    return NULL;
}

/* The cached (block, content_length, app_close, own_defaults) of ``message``'s headers as a
 * new reference, when it holds nothing frame_head must look at again; else NULL (an error
 * set or not). */
static PyObject *
cached_render(PyObject *message, PyObject *heads, long status)
{
    PyObject *key = headers_key(message);
    if (key == NULL)
        return NULL;
    PyObject *entry = PyDict_GetItemWithError(heads, key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL) {
        if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_TypeError))
            PyErr_Clear(); /* an item that cannot be a key: frame_head renders it */
        return NULL;
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4 ||
        !PyBytes_CheckExact(PyTuple_GET_ITEM(entry, 0)) ||
        PyTuple_GET_ITEM(entry, 3) != Py_False ||                      /* own Server/Date */
        (PyTuple_GET_ITEM(entry, 1) != Py_None && status == 204))      /* CL dropped */
        return NULL;
    return Py_NewRef(entry);
}

static int
set_attrs(PyObject *writer, PyObject *const *names, PyObject *const *values, int n)
{
    for (int i = 0; i < n; i++) {
        if (PyObject_SetAttr(writer, names[i], values[i]) < 0)
            return -1;
    }
    return 0;
}

/* The head's bytes: status line, defaults, the app's lines and the framing lines. */
static PyObject *
join_head(PyObject *line, PyObject *defaults, PyObject *block, int chunked, int close,
          int http10)
{
    const char *conn_line = close ? CLOSE_LINE : http10 ? KEEP_ALIVE_LINE : "";
    size_t chunked_len = chunked ? sizeof(CHUNKED_LINE) - 1 : 0, conn_len = strlen(conn_line);
    PyObject *const parts[3] = {line, defaults, block};
    Py_ssize_t total = (Py_ssize_t)(chunked_len + conn_len + 2);
    for (int i = 0; i < 3; i++)
        total += PyBytes_GET_SIZE(parts[i]);
    PyObject *head = PyBytes_FromStringAndSize(NULL, total);
    if (head == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(head);
    for (int i = 0; i < 3; i++) {
        memcpy(out, PyBytes_AS_STRING(parts[i]), (size_t)PyBytes_GET_SIZE(parts[i]));
        out += PyBytes_GET_SIZE(parts[i]);
    }
    memcpy(out, CHUNKED_LINE, chunked_len);
    memcpy(out + chunked_len, conn_line, conn_len);
    memcpy(out + chunked_len + conn_len, "\r\n", 2);
    return head;
}

/* Frames the head as frame_head would, from the caches it fills; 1 done, 0 for frame_head. */
static int
frame_cached(PyObject *writer, PyObject *message, PyObject *defaults, int head_request,
             int http10, int body_unread, PyObject *heads, PyObject *lines)
{
    PyObject *status = PyDict_GetItemWithError(message, s_status); /* borrowed */
    if (status == NULL || !PyLong_CheckExact(status))
        return PyErr_Occurred() ? -1 : 0;
    PyObject *line = PyDict_GetItemWithError(lines, status);
    if (line == NULL || !PyBytes_CheckExact(line))
        return PyErr_Occurred() ? -1 : 0;
    long code = PyLong_AsLong(status);
    PyObject *entry = cached_render(message, heads, code);
    if (entry == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *keep = PyObject_GetAttr(writer, s_keep_alive);
    int keep_alive = keep == NULL ? -1 : PyObject_IsTrue(keep);
    Py_XDECREF(keep);
    PyObject *length = PyTuple_GET_ITEM(entry, 1), *head = NULL;
    int no_body = code == 204 || code == 304 || head_request, chunked = 0, result = -1;
    if (keep_alive < 0)
        goto done;
    keep_alive = keep_alive && !PyObject_IsTrue(PyTuple_GET_ITEM(entry, 2)) && !body_unread;
    if (length == Py_None && !no_body) {
        if (http10)
            keep_alive = 0; /* close-delimited body */
        else
            chunked = 1;
    }
    head = join_head(line, defaults, PyTuple_GET_ITEM(entry, 0), chunked, !keep_alive, http10);
    if (head != NULL) {
        PyObject *const names[] = {s_chunked, s_keep_alive, s_content_length,
                                   s_no_body, s_status,     s_pending_head};
        PyObject *const values[] = {chunked ? Py_True : Py_False, keep_alive ? Py_True : Py_False,
                                    length, no_body ? Py_True : Py_False, status, head};
        result = set_attrs(writer, names, values, 6) < 0 ? -1 : 1;
    }
done:
    Py_XDECREF(head);
    Py_DECREF(entry);
    return result;
}

static PyObject *
cached_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyTuple_CheckExact(args[6]) || PyTuple_GET_SIZE(args[6]) != 2 ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(args[6], 0)) ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(args[6], 1))) {
        PyErr_SetString(PyExc_TypeError, "cached_head(writer, message, defaults, head_request, "
                                         "http10, body_unread, (heads, status_lines))");
        return NULL;
    }
    if (!PyDict_CheckExact(args[1]) || !PyBytes_CheckExact(args[2]))
        Py_RETURN_FALSE;
    int flags[3];
    for (int i = 0; i < 3; i++) {
        if ((flags[i] = PyObject_IsTrue(args[3 + i])) < 0)
            return NULL;
    }
    int done = frame_cached(args[0], args[1], args[2], flags[0], flags[1], flags[2],
                            PyTuple_GET_ITEM(args[6], 0), PyTuple_GET_ITEM(args[6], 1));
    if (done < 0)
        return NULL;
    return PyBool_FromLong(done);
}

static PyMethodDef methods[] = {
    {"fast_scope", (PyCFunction)(void (*)(void))fast_scope, METH_FASTCALL,
     "fast_scope(parser, url, headers, conn, constants) -> dict | None: the scope of a request "
     "the head rules would pass unchanged, or None for the rules to decide."},
    {"plain_request", (PyCFunction)(void (*)(void))plain_request, METH_FASTCALL,
     "plain_request(data, pos, conn, constants) -> (scope, end, body) | None: a complete "
     "request at data[pos:], bodyless (body None) or with all of its Content-Length body, "
     "read without the parser, or None for the parser to read."},
    {"cached_head", (PyCFunction)(void (*)(void))cached_head, METH_FASTCALL,
     "cached_head(writer, message, defaults, head_request, http10, body_unread, caches) -> "
     "bool: frame a response head from ResponseWriter's caches, or False for frame_head."},
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
        {&s_limit_request_line, "limit_request_line"},
        {&s_limit_request_fields, "limit_request_fields"},
        {&s_limit_request_headers, "limit_request_headers"},
        {&s_status, "status"},
        {&s_keep_alive, "keep_alive"},
        {&s_chunked, "chunked"},
        {&s_content_length, "content_length"},
        {&s_no_body, "no_body"},
        {&s_pending_head, "pending_head"},
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
    fill_tchar();
    return PyModule_Create(&module);
}
