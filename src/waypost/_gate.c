/* waypost._plainstore.Gate: the guard layer's common answer, in C, for the compiled road.
 *
 * A browser or an API client sends the same credential with every request, and each guard
 * remembers a credential that passed (waypost.guards: a session guard by the Cookie header as
 * sent, an api_key guard by its three credential headers as sent, a jwt guard by its bearer
 * token). A Gate reads those memories as the Python guards do and says one of:
 *
 *   - passed: every guard that the request's guard rules require remembers its credential, and
 *     here are the identity headers the app or upstream gets (the guard layer's own, for one
 *     guard: X-Waypost-User, X-Waypost-Guard and the guard's own);
 *   - open: no guard rule matches the path (most of a site), so the rules alone decide;
 *   - not handled: anything else (no credential, one not remembered or expired, a guard kind
 *     it does not read, several guards, a header sent twice, an unusual path). The Python guard
 *     layer then decides, as it always did: it is the reference, and it alone ever denies.
 *
 * So a Gate can only ever let through what the Python layer would let through from the same
 * memories; it never decides a failure. The guard rules it matches are those of the layer's
 * quick road (waypost.engine._guards.GuardLayer.check): exact paths, and static segments then a
 * bare <path:...>, without conditions. A layer with others gets no Gate (GuardLayer.memories()
 * says None).
 *
 * The description (GuardLayer.memories(), completed by waypost.engine._compiled.gate()):
 *   tails:  ((prefix, guard ids), ...)        a rule for '/a/b/<path:rest>' has prefix 'a/b/'
 *   exact:  ((dict path -> guard ids, case_insensitive), ...)  one per exact-table variant
 *   guards: ((kind, name, memory, ring or None, note directly), ...)   kind: 'session',
 *           'api_key', 'bearer', or None (a kind the Gate does not read: a request needing it
 *           is not handled); an api_key's use is noted in its ring's `uses` dict directly, or
 *           (a subclass's) by calling ring.note_use(key id)
 *   vary:   the Vary of a decision the guards let through
 *   user_header, guard_header: X-Waypost-User and X-Waypost-Guard
 *   lazy_headers: the middlewares' LazyHeaders type (its pairs are read as Request reads them)
 */
#include "_plainstore.h"
#include "_gate.h"

enum { KIND_NONE = 0, KIND_SESSION, KIND_API_KEY, KIND_BEARER };

typedef struct {
    int kind;
    PyObject *name;
    PyObject *memory; /* the guard's dict of remembered passes (cleared, never replaced) */
    PyObject *ring;   /* api_key: its KeyRing */
    int direct;       /* api_key: a use is written into ring.uses (else ring.note_use()) */
    /* The identity headers made last, for the Allowed they were made from (a browser sends
     * the same credential again and again) */
    PyObject *last_allowed;
    PyObject *last_identity;
} GateGuard;

typedef struct {
    PyObject_HEAD
    PyObject *tails; /* tuple of (ASCII str, tuple of int) */
    PyObject *exact; /* tuple of (dict, bool) */
    GateGuard *guards;
    Py_ssize_t nguards;
    PyObject *vary;
    PyObject *user_header;
    PyObject *guard_header;
    PyObject *lazy_headers; /* the middlewares' LazyHeaders type */
} Gate;

static PyObject *S_PAIRS, *S_GENERATION, *S_NOTE_USE, *S_USES, *S_ID, *S_USER,
    *S_HEADERS_ATTR, *S_RAW_HEADERS, *S_TIME;

static PyObject *TIME_MODULE;

/* time.time(), as the guards read it (looked up each time, as their module's global is): 0, or
 * -1 with an exception. */
static int
wall_now(double *now)
{
    PyObject *clock = PyObject_GetAttr(TIME_MODULE, S_TIME);
    PyObject *value = clock == NULL ? NULL : PyObject_CallNoArgs(clock);
    Py_XDECREF(clock);
    if (value == NULL) return -1;
    *now = PyFloat_AsDouble(value);
    Py_DECREF(value);
    return *now == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* -- reading headers ------------------------------------------------------------------------- */

typedef struct {
    const char *name; /* lower case */
    size_t len;
} Want;

/* The values of the headers `want` (lower case names) among the request's header pairs, as
 * Request.headers_named() finds them (names compared without case), into `out` (new
 * references, NULL when not sent: the caller releases them, as what it does with them may run
 * Python code that changes the pairs). 1: found; 0: not handled (a header sent twice, which
 * Python joins; pairs of another shape; a non-ASCII name as long as a wanted one, which
 * str.lower() might turn into it); -1: an error. */
static int
read_headers(Gate *g, PyObject *request, const Want *want, int nwant, PyObject **out)
{
    for (int k = 0; k < nwant; k++) out[k] = NULL;
    PyObject *raw = PyObject_GetAttr(request, S_RAW_HEADERS);
    if (raw == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (raw == Py_None) {
        Py_DECREF(raw);
        return 1;
    }
    if (!PyList_CheckExact(raw) && !PyTuple_CheckExact(raw)) {
        /* The middlewares' LazyHeaders: its pairs, read once (what Request reads too). */
        if ((PyObject *)Py_TYPE(raw) != g->lazy_headers) {
            Py_DECREF(raw);
            return 0;
        }
        PyObject *pairs = PyObject_CallMethodNoArgs(raw, S_PAIRS);
        Py_DECREF(raw);
        if (pairs == NULL) return -1;
        raw = pairs;
        if (!PyList_CheckExact(raw)) {
            Py_DECREF(raw);
            return 0;
        }
    }
    /* A list may change while read: every item is read through a fresh bound check. */
    int is_list = PyList_CheckExact(raw);
    for (Py_ssize_t i = 0;; i++) {
        Py_ssize_t size = is_list ? PyList_GET_SIZE(raw) : PyTuple_GET_SIZE(raw);
        if (i >= size) break;
        PyObject *pair = is_list ? PyList_GET_ITEM(raw, i) : PyTuple_GET_ITEM(raw, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) goto unhandled;
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(value)) goto unhandled;
        Py_ssize_t len = PyUnicode_GET_LENGTH(name);
        for (int k = 0; k < nwant; k++) {
            if ((size_t)len != want[k].len) continue;
            if (!PyUnicode_IS_ASCII(name)) goto unhandled;
            const char *s = PyUnicode_DATA(name);
            size_t j = 0;
            for (; j < want[k].len; j++) {
                char c = s[j];
                if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
                if (c != want[k].name[j]) break;
            }
            if (j < want[k].len) continue;
            if (out[k] != NULL) goto unhandled; /* sent twice: Python joins them */
            out[k] = value;
            break;
        }
    }
    for (int k = 0; k < nwant; k++) Py_XINCREF(out[k]); /* no Python code ran since found */
    Py_DECREF(raw);
    return 1;
unhandled:
    Py_DECREF(raw);
    for (int k = 0; k < nwant; k++) out[k] = NULL;
    return 0;
}

static const Want COOKIE[1] = {{"cookie", 6}};
static const Want CREDENTIALS[3] = {
    {"authorization", 13}, {"x-api-key", 9}, {"x-secret-token", 14}};
static const Want AUTHORIZATION[1] = {{"authorization", 13}};

static int
is_space(Py_UCS4 c)
{
    return Py_UNICODE_ISSPACE(c);
}

/* The token of `Authorization: Bearer <token>` as the jwt guard reads it (the value stripped,
 * the scheme before the first space, the rest stripped): a new str, or NULL (no exception:
 * none; with one: an error). */
static PyObject *
bearer_token(PyObject *authorization)
{
    if (!PyUnicode_IS_ASCII(authorization)) return NULL; /* str.lower() of others: Python's */
    const char *s = PyUnicode_DATA(authorization);
    Py_ssize_t n = PyUnicode_GET_LENGTH(authorization), a = 0;
    while (a < n && is_space((unsigned char)s[a])) a++;
    while (n > a && is_space((unsigned char)s[n - 1])) n--;
    if (n - a < 7) return NULL;
    const char *scheme = "bearer";
    for (int k = 0; k < 6; k++) {
        char c = s[a + k];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != scheme[k]) return NULL;
    }
    if (s[a + 6] != ' ') return NULL;
    Py_ssize_t t = a + 7;
    while (t < n && is_space((unsigned char)s[t])) t++;
    if (t >= n) return NULL;
    return PyUnicode_Substring(authorization, t, n);
}

/* -- the guards' memories -------------------------------------------------------------------- */

/* ring.note_use(key_id) of an api_key guard, now: 0, or -1 with an exception. */
static int
note_use(GateGuard *guard, PyObject *key_id, double now)
{
    if (!guard->direct) {
        PyObject *noted = PyObject_CallMethodOneArg(guard->ring, S_NOTE_USE, key_id);
        Py_XDECREF(noted);
        return noted == NULL ? -1 : 0;
    }
    PyObject *uses = PyObject_GetAttr(guard->ring, S_USES);
    PyObject *when = uses == NULL ? NULL : PyFloat_FromDouble(now);
    int got = -1;
    if (when != NULL) {
        got = PyDict_Check(uses) ? PyDict_SetItem(uses, key_id, when)
                                 : PyObject_SetItem(uses, key_id, when);
    }
    Py_XDECREF(when);
    Py_XDECREF(uses);
    return got;
}

/* The Allowed of a session's or a token's remembered pass, `(Allowed, expires)` found under
 * `key` in `memory`, while it has not run out: a new reference, or NULL (with an exception: an
 * error). */
static PyObject *
unexpired(PyObject *memory, PyObject *key, double now)
{
    PyObject *entry = PyDict_GetItemWithError(memory, key); /* borrowed */
    if (entry != NULL && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 2 &&
        PyFloat_CheckExact(PyTuple_GET_ITEM(entry, 1)) &&
        PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(entry, 1)) > now) {
        return Py_NewRef(PyTuple_GET_ITEM(entry, 0));
    }
    return NULL;
}

/* What `guard` remembers for `request`: its Allowed (new reference), or NULL (no exception: not
 * remembered, or not handled; with one: an error). */
static PyObject *
remembered(Gate *g, GateGuard *guard, PyObject *request, double now)
{
    PyObject *values[3] = {NULL, NULL, NULL}, *allowed = NULL;
    switch (guard->kind) {
    case KIND_SESSION: {
        int got = read_headers(g, request, COOKIE, 1, values);
        if (got > 0 && values[0] != NULL) allowed = unexpired(guard->memory, values[0], now);
        break;
    }
    case KIND_BEARER: {
        int got = read_headers(g, request, AUTHORIZATION, 1, values);
        if (got <= 0 || values[0] == NULL) break;
        PyObject *token = bearer_token(values[0]);
        if (token == NULL) break;
        allowed = unexpired(guard->memory, token, now);
        Py_DECREF(token);
        break;
    }
    case KIND_API_KEY: {
        int got = read_headers(g, request, CREDENTIALS, 3, values);
        if (got <= 0 || (values[0] == NULL && values[1] == NULL)) break;
        PyObject *sent = PyTuple_New(3);
        if (sent == NULL) break;
        for (int k = 0; k < 3; k++) {
            PyTuple_SET_ITEM(sent, k, Py_NewRef(values[k] == NULL ? Py_None : values[k]));
        }
        PyObject *entry = PyDict_GetItemWithError(guard->memory, sent);
        Py_DECREF(sent);
        /* (key, ring generation, Allowed, nothing else to check) */
        if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4 ||
            PyTuple_GET_ITEM(entry, 3) != Py_True)
            break;
        Py_INCREF(entry); /* note_use() below runs Python code, which may clear the memory */
        PyObject *generation = PyObject_GetAttr(guard->ring, S_GENERATION);
        int same = generation == NULL
                       ? -1
                       : PyObject_RichCompareBool(generation, PyTuple_GET_ITEM(entry, 1), Py_EQ);
        Py_XDECREF(generation);
        if (same == 1) {
            PyObject *key_id = PyObject_GetAttr(PyTuple_GET_ITEM(entry, 0), S_ID);
            int noted = key_id == NULL ? -1 : note_use(guard, key_id, now);
            Py_XDECREF(key_id);
            if (noted == 0) allowed = Py_NewRef(PyTuple_GET_ITEM(entry, 2));
        }
        Py_DECREF(entry);
        break;
    }
    default:
        break;
    }
    for (int k = 0; k < 3; k++) Py_XDECREF(values[k]);
    return allowed;
}

/* -- the guard rules ------------------------------------------------------------------------- */

#define MAX_GUARDS 256

/* The guard ids `which` (a tuple of ints, checked by gate_new()) added to the bitset `ids`. */
static void
mark(uint64_t *ids, PyObject *which)
{
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(which); j++) {
        Py_ssize_t id = PyLong_AsSsize_t(PyTuple_GET_ITEM(which, j));
        ids[id / 64] |= (uint64_t)1 << (id % 64);
    }
}

/* The guard ids of the guard rules matching the decoded ASCII `path` (a quick-road path: see
 * gate_pass()), added to `ids` (a bitset of MAX_GUARDS bits); `*any`: whether a rule matched.
 * 0, or -1: an error. */
static int
matching_guards(Gate *g, const char *s, Py_ssize_t n, uint64_t *ids, int *any)
{
    *any = 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(g->tails); k++) {
        PyObject *tail = PyTuple_GET_ITEM(g->tails, k);
        PyObject *prefix = PyTuple_GET_ITEM(tail, 0);
        Py_ssize_t len = PyUnicode_GET_LENGTH(prefix);
        if (len + 1 > n || memcmp(PyUnicode_DATA(prefix), s + 1, (size_t)len) != 0) continue;
        mark(ids, PyTuple_GET_ITEM(tail, 1));
        *any = 1;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(g->exact); k++) {
        PyObject *variant = PyTuple_GET_ITEM(g->exact, k);
        PyObject *table = PyTuple_GET_ITEM(variant, 0);
        PyObject *key = PyUnicode_New(n, 127);
        if (key == NULL) return -1;
        char *o = PyUnicode_DATA(key);
        memcpy(o, s, (size_t)n);
        if (PyTuple_GET_ITEM(variant, 1) == Py_True) {
            for (Py_ssize_t i = 0; i < n; i++) {
                if (o[i] >= 'A' && o[i] <= 'Z') o[i] = (char)(o[i] + 32);
            }
        }
        PyObject *which = PyDict_GetItemWithError(table, key);
        Py_DECREF(key);
        if (which == NULL) {
            if (PyErr_Occurred()) return -1;
            continue;
        }
        mark(ids, which);
        *any = 1;
    }
    return 0;
}

/* A path of the guard layer's quick road: it is its only form (see GuardLayer.check()). */
static int
quick_form(const char *s, Py_ssize_t n)
{
    if (n < 1 || s[0] != '/' || s[n - 1] == '/') return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\0' || c == ';' || c == '\\') return 0;
        if (c == '/' && i + 1 < n && (s[i + 1] == '.' || s[i + 1] == '/')) return 0;
    }
    return 1;
}

int
gate_matches(PyObject *gate, const char *s, Py_ssize_t n)
{
    Gate *g = (Gate *)gate;
    if (!quick_form(s, n)) return 1; /* cannot tell: the Python road looks */
    uint64_t ids[MAX_GUARDS / 64] = {0};
    int any;
    if (matching_guards(g, s, n, ids, &any) < 0) return -1;
    return any;
}

int
gate_pass(PyObject *gate, PyObject *request, const char *s, Py_ssize_t n, PyObject **identity)
{
    Gate *g = (Gate *)gate;
    *identity = NULL;
    if (!quick_form(s, n)) return 0;
    uint64_t ids[MAX_GUARDS / 64] = {0};
    int any;
    if (matching_guards(g, s, n, ids, &any) < 0) return -1;
    if (!any) return 2; /* no guard to pass */
    Py_ssize_t only = -1;
    for (Py_ssize_t id = 0; id < g->nguards; id++) {
        if (!(ids[id / 64] & ((uint64_t)1 << (id % 64)))) continue;
        if (only >= 0) return 0; /* several guards: their identities merge on the Python road */
        only = id;
    }
    if (only < 0) return 0;
    GateGuard *guard = &g->guards[only];
    double now;
    if (wall_now(&now) < 0) return -1;
    PyObject *allowed = remembered(g, guard, request, now);
    if (allowed == NULL) return PyErr_Occurred() ? -1 : 0;
    if (allowed == guard->last_allowed) {
        Py_DECREF(allowed);
        *identity = Py_NewRef(guard->last_identity);
        return 1;
    }
    /* ((X-Waypost-User, user), (X-Waypost-Guard, name)) + the guard's own headers, as the
     * guard layer's identity_headers() writes them for one guard */
    PyObject *user = PyObject_GetAttr(allowed, S_USER);
    PyObject *own = user == NULL ? NULL : PyObject_GetAttr(allowed, S_HEADERS_ATTR);
    if (own == NULL || !PyUnicode_Check(user) || !PyTuple_Check(own)) {
        Py_DECREF(allowed);
        Py_XDECREF(user);
        Py_XDECREF(own);
        if (PyErr_Occurred()) return -1;
        return 0;
    }
    int has_user = PyUnicode_GET_LENGTH(user) > 0;
    Py_ssize_t nown = PyTuple_GET_SIZE(own);
    PyObject *out = PyTuple_New(has_user + 1 + nown);
    PyObject *user_pair = has_user ? PyTuple_Pack(2, g->user_header, user) : NULL;
    PyObject *guard_pair = PyTuple_Pack(2, g->guard_header, guard->name);
    Py_DECREF(user);
    if (out == NULL || guard_pair == NULL || (has_user && user_pair == NULL)) {
        Py_DECREF(allowed);
        Py_XDECREF(out);
        Py_XDECREF(user_pair);
        Py_XDECREF(guard_pair);
        Py_DECREF(own);
        return -1;
    }
    Py_ssize_t at = 0;
    if (has_user) PyTuple_SET_ITEM(out, at++, user_pair);
    PyTuple_SET_ITEM(out, at++, guard_pair);
    for (Py_ssize_t k = 0; k < nown; k++) {
        PyTuple_SET_ITEM(out, at++, Py_NewRef(PyTuple_GET_ITEM(own, k)));
    }
    Py_DECREF(own);
    Py_XSETREF(guard->last_identity, Py_NewRef(out));
    Py_XSETREF(guard->last_allowed, allowed); /* the reference taken above */
    *identity = out;
    return 1;
}

PyObject *
gate_vary(PyObject *gate)
{
    return ((Gate *)gate)->vary;
}

/* -- the type -------------------------------------------------------------------------------- */

static void
gate_dealloc(Gate *self)
{
    for (Py_ssize_t k = 0; k < self->nguards; k++) {
        Py_XDECREF(self->guards[k].name);
        Py_XDECREF(self->guards[k].memory);
        Py_XDECREF(self->guards[k].ring);
        Py_XDECREF(self->guards[k].last_allowed);
        Py_XDECREF(self->guards[k].last_identity);
    }
    PyMem_Free(self->guards);
    Py_XDECREF(self->tails);
    Py_XDECREF(self->exact);
    Py_XDECREF(self->vary);
    Py_XDECREF(self->user_header);
    Py_XDECREF(self->guard_header);
    Py_XDECREF(self->lazy_headers);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A tuple of guard ids, each below `nguards`. */
static int
valid_ids(PyObject *ids, Py_ssize_t nguards)
{
    if (!PyTuple_CheckExact(ids)) return 0;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(ids); j++) {
        PyObject *id = PyTuple_GET_ITEM(ids, j);
        if (!PyLong_CheckExact(id)) return 0;
        Py_ssize_t v = PyLong_AsSsize_t(id);
        if (v < 0 || v >= nguards) {
            PyErr_Clear();
            return 0;
        }
    }
    return 1;
}

static PyObject *
gate_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"tails",       "exact",        "guards",       "vary",
                            "user_header", "guard_header", "lazy_headers", NULL};
    PyObject *tails, *exact, *guards, *vary, *user_header, *guard_header, *lazy_headers;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!O!UUO!:Gate", names, &PyTuple_Type,
                                     &tails, &PyTuple_Type, &exact, &PyTuple_Type, &guards,
                                     &PyTuple_Type, &vary, &user_header, &guard_header,
                                     &PyType_Type, &lazy_headers))
        return NULL;
    Py_ssize_t nguards = PyTuple_GET_SIZE(guards);
    if (nguards > MAX_GUARDS) {
        PyErr_Format(PyExc_ValueError, "a Gate reads at most %d guards", MAX_GUARDS);
        return NULL;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(tails); k++) {
        PyObject *t = PyTuple_GET_ITEM(tails, k);
        if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 2 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(t, 0)) ||
            !PyUnicode_IS_ASCII(PyTuple_GET_ITEM(t, 0)) || !valid_ids(PyTuple_GET_ITEM(t, 1), nguards)) {
            PyErr_SetString(PyExc_ValueError, "tails: (ASCII prefix, guard ids) each");
            return NULL;
        }
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(exact); k++) {
        PyObject *e = PyTuple_GET_ITEM(exact, k);
        if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) != 2 ||
            !PyDict_CheckExact(PyTuple_GET_ITEM(e, 0)) || !PyBool_Check(PyTuple_GET_ITEM(e, 1))) {
            PyErr_SetString(PyExc_ValueError, "exact: (dict, case_insensitive) each");
            return NULL;
        }
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(PyTuple_GET_ITEM(e, 0), &pos, &key, &value)) {
            if (!PyUnicode_CheckExact(key) || !valid_ids(value, nguards)) {
                PyErr_SetString(PyExc_ValueError, "exact: path -> guard ids");
                return NULL;
            }
        }
    }
    Gate *self = (Gate *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->guards = PyMem_Calloc(nguards ? (size_t)nguards : 1, sizeof(GateGuard));
    if (self->guards == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; k < nguards; k++) {
        PyObject *d = PyTuple_GET_ITEM(guards, k);
        PyObject *kind, *name, *memory, *ring;
        int direct;
        if (!PyTuple_CheckExact(d) ||
            !PyArg_ParseTuple(d, "OUOOp:Gate guard", &kind, &name, &memory, &ring, &direct)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError,
                                "guards: (kind, name, memory, ring, note directly) each");
            Py_DECREF(self);
            return NULL;
        }
        int code = KIND_NONE;
        if (kind != Py_None) {
            if (PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "session") == 0)
                code = KIND_SESSION;
            else if (PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "api_key") == 0)
                code = KIND_API_KEY;
            else if (PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "bearer") == 0)
                code = KIND_BEARER;
            else {
                PyErr_SetString(PyExc_ValueError, "a guard's kind: 'session', 'api_key', 'bearer' or None");
                Py_DECREF(self);
                return NULL;
            }
            if (!PyDict_CheckExact(memory) || (code == KIND_API_KEY && ring == Py_None)) {
                PyErr_SetString(PyExc_ValueError, "a guard's memory is a dict (and an api_key's ring is given)");
                Py_DECREF(self);
                return NULL;
            }
        }
        self->guards[k].kind = code;
        self->guards[k].name = Py_NewRef(name);
        self->guards[k].memory = Py_NewRef(memory);
        self->guards[k].ring = Py_NewRef(ring);
        self->guards[k].direct = direct;
        self->nguards = k + 1;
    }
    self->tails = Py_NewRef(tails);
    self->exact = Py_NewRef(exact);
    self->vary = Py_NewRef(vary);
    self->user_header = Py_NewRef(user_header);
    self->guard_header = Py_NewRef(guard_header);
    self->lazy_headers = Py_NewRef(lazy_headers);
    return (PyObject *)self;
}

PyDoc_STRVAR(gate_doc,
"Gate(tails, exact, guards, vary, user_header, guard_header, lazy_headers)\n\n"
"What the compiled road reads to let a request through its guards from what they remember\n"
"(see _gate.c); described by GuardLayer.memories(), built by waypost.engine._compiled.gate()\n"
"and given to FastPath(gate=...).");

PyTypeObject GateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "waypost._plainstore.Gate",
    .tp_basicsize = sizeof(Gate),
    .tp_dealloc = (destructor)gate_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = gate_doc,
    .tp_new = gate_new,
};

int
gate_add_type(PyObject *module)
{
    S_PAIRS = PyUnicode_InternFromString("pairs");
    S_GENERATION = PyUnicode_InternFromString("generation");
    S_NOTE_USE = PyUnicode_InternFromString("note_use");
    S_USES = PyUnicode_InternFromString("uses");
    S_ID = PyUnicode_InternFromString("id");
    S_USER = PyUnicode_InternFromString("user");
    S_HEADERS_ATTR = PyUnicode_InternFromString("headers");
    S_RAW_HEADERS = PyUnicode_InternFromString("raw_headers");
    S_TIME = PyUnicode_InternFromString("time");
    TIME_MODULE = PyImport_ImportModule("time");
    if (!S_PAIRS || !S_GENERATION || !S_NOTE_USE || !S_USES || !S_ID || !S_USER || !S_HEADERS_ATTR ||
        !S_RAW_HEADERS || !S_TIME || !TIME_MODULE)
        return -1;
    return PyModule_AddType(module, &GateType);
}
