/* waypost._plainstore.FastPath: the common answer of Engine.resolve() in one compiled call.
 *
 * Engine.resolve() is a dozen interpreter steps of 100 to 460 ns each (split the URL, probe the
 * exact rules, walk the pattern index, match a regex, convert the values, check them, fill the
 * target, build the Decision). A FastPath does the same in C for what most requests meet: a
 * literal redirect of the compiled store, or a pattern rule without conditions whose converters
 * are built-in (string, int, any, path) and whose target is fixed text or a template filled from
 * the values in order. Whatever it does not cover, it answers None ("not handled") and the
 * Python road answers, as before: the Python road is the reference, and the property-based tests
 * compare the two on generated rule sets and requests (tests/engine/test_compiled.py).
 *
 * What it is made of (waypost/engine/_compiled.py builds the description it takes):
 *
 *   - the exact rules: the paths of the rule set's dict of exact rules, each with the rule a
 *     lookup finds first (with conditions, or an action it does not cover: the Python road's),
 *     and the compiled store of literal redirects;
 *   - the pattern index: the branches and leaves of waypost.matching._index.FirstIndex, walked
 *     in the same order (static child, then edges and tails by rank); a branch whose order that
 *     walk cannot vouch for answers "not handled" when reached, as the Python walk hands over to
 *     the full search;
 *   - per pattern rule, its program: the whole pattern as segments (static text, or literal text
 *     around one variable) and a tail, matched against the path once the walk has reached the
 *     rule, which gives its values; and its action.
 *
 * Everything lives in a few flat arrays (nodes, alternatives, static tables, segments, rules)
 * and one pool of bytes; a request allocates only its answer.
 */
#include "_plainstore.h"
#include "_gate.h"
#include <structmember.h>
#include <stddef.h>

#define MAX_SEGMENTS 64
#define MAX_VALUES 32

/* A walk's outcome: a rule's position, or one of these. */
#define MISS (-1)
#define UNHANDLED (-2)

enum { CONV_STRING = 1, CONV_INT, CONV_ANY, CONV_PATH };
enum { CHECK_NONE = 0, CHECK_TEXT, CHECK_PATH };
enum { ACT_REDIRECT = 1, ACT_REWRITE, ACT_RESPOND, ACT_PASS };
enum { STAGE_ALL = 1, STAGE_BEFORE = 2, STAGE_MISSING = 4 };
enum { GATE_NONE = 0, GATE_STATIC, GATE_ONE };
enum { ALT_EDGE = 1, ALT_TAILS };

typedef struct {
    uint32_t off, len;
} Str;

/* Static text, or text around one variable (a segment), or the tail's. */
typedef struct {
    uint8_t is_var;
    uint8_t conv;
    uint8_t signed_;
    uint8_t has_min, has_max;
    Str prefix, suffix; /* is_var 0: prefix is the whole text */
    int64_t min, max;   /* int: bounds; string: length bounds (max < 0: none) */
    uint32_t fixed;     /* int: fixed_digits */
    uint32_t words, nwords; /* any: positions in the word list */
} Seg;

typedef struct {
    uint64_t hash;
    Str key;
    int32_t child; /* a node */
} Slot;

typedef struct {
    uint8_t is_leaf;
    uint8_t ordered;
    int32_t rule;     /* leaf: its rule; branch: the rule ending here (-1: none) */
    uint32_t slots;   /* branch: its static table (a power of two long; 0: none) */
    uint32_t mask;
    uint32_t alts, nalts;
} Node;

typedef struct {
    uint8_t kind;
    uint8_t gate;
    int32_t seg;    /* edge: its segment (-1: not supported, "not handled" when tried) */
    int32_t target; /* edge: the node below */
    Str one;        /* GATE_ONE: the next segment's only text */
    uint32_t tails, ntails; /* tails: positions in the tail list (rules) */
} Alt;

typedef struct {
    uint8_t action;   /* 0: not handled */
    uint8_t stages;   /* the stages in which it decides alone */
    uint8_t keep_query;
    uint8_t text_target; /* the target is fixed text (pieces[0]) */
    uint8_t has_program;
    int32_t tail;     /* its tail segment (-1: none) */
    uint32_t parts, nparts; /* segment positions (static or one variable each) */
    uint32_t pieces, npieces; /* template: literal pieces (npieces = picks + 1) */
    uint32_t picks;   /* per placeholder: the value's position, and its check */
    uint32_t position; /* the rule's position in its rule set (what hits are counted by) */
    PyObject *rule;
    PyObject *status;
    PyObject *headers;
    PyObject *body;
    PyObject *text; /* the fixed target */
} Rule;

typedef struct {
    PyObject_HEAD
    char *pool;
    size_t pool_len;
    Node *nodes;
    Py_ssize_t nnodes;
    Alt *alts;
    Py_ssize_t nalts;
    Slot *slots;
    Py_ssize_t nslots;
    Seg *segs;
    Py_ssize_t nsegs;
    Rule *rules;
    Py_ssize_t nrules;
    uint32_t *ints; /* tails, parts, picks (value, check) */
    Py_ssize_t nints;
    Str *strs;      /* any's words, templates' pieces */
    Py_ssize_t nstrs;
    int patterns;   /* 0: none (a miss is final), 1: the index, 2: not handled */
    int strict;
    int merge_slashes;
    int slash_redirects;
    uint32_t exact_slots, exact_mask; /* the exact paths' table (mask 0: none) */
    PyObject *table; /* without that table: the dict of exact paths (a hit: the Python road) */
    PlainStore *store;  /* or NULL */
    PyObject *prefixes; /* tuple or NULL */
    PyObject *metas;    /* per meta of the store: (status, keep_query, meta) */
    PyObject *lazy_rules;
    PyObject *decision_type;
    PyObject *descr[10];
    Py_ssize_t offset[10]; /* each slot's place in a Decision */
    PyObject *no_match;
    PyObject *empty_tuple;
    /* Hit counting (start_counting()): per rule position, the hits since the last drain, and
     * the positions hit, in the order of their first hit. */
    Py_ssize_t size; /* the rule set's rules */
    uint32_t *counts;
    uint32_t *touched;
    Py_ssize_t ntouched;
    int64_t last; /* the position of the rule that made the last answer (-1: none) */
    int uncountable; /* a rule is not at its position: no counting */
    /* A rule set with guards: resolve() answers only through the gate (a Gate, or NULL: never),
     * resolve_rules() gives the rules' decision once the guard layer let a request through. */
    int guarded;
    PyObject *gate;
} FastPath;

/* The Decision's slots, in the order of descr[]. */
static const char *const FIELDS[10] = {"action", "status", "location", "path", "query",
                                       "headers", "body", "rule", "vary", "_lazy"};
enum { F_ACTION, F_STATUS, F_LOCATION, F_PATH, F_QUERY, F_HEADERS, F_BODY, F_RULE, F_VARY, F_LAZY };

static PyObject *S_REDIRECT, *S_REWRITE, *S_RESPOND, *S_PASS, *S_ALL, *S_BEFORE, *S_MISSING,
    *S_PATH, *S_QUERY_STRING;

static uint64_t
fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* -- building ------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int
grow(void **p, Py_ssize_t *cap, Py_ssize_t need, size_t item)
{
    if (need <= *cap) return 0;
    Py_ssize_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = PyMem_RawRealloc(*p, (size_t)n * item);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = n;
    return 0;
}

typedef struct {
    FastPath *fp;
    Py_ssize_t pool_cap, nodes_cap, alts_cap, slots_cap, segs_cap, rules_cap, ints_cap, strs_cap;
} Builder;

static int
add_text(Builder *b, PyObject *text, Str *out)
{
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "texts must be ASCII str");
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    FastPath *fp = b->fp;
    Py_ssize_t len = (Py_ssize_t)fp->pool_len;
    if (grow((void **)&fp->pool, &b->pool_cap, len + n + 1, 1) < 0) return -1;
    memcpy(fp->pool + len, PyUnicode_DATA(text), (size_t)n);
    out->off = (uint32_t)len;
    out->len = (uint32_t)n;
    fp->pool_len += (size_t)n;
    return 0;
}

static int
add_int(Builder *b, uint32_t v)
{
    FastPath *fp = b->fp;
    if (grow((void **)&fp->ints, &b->ints_cap, fp->nints + 1, sizeof(uint32_t)) < 0) return -1;
    fp->ints[fp->nints++] = v;
    return 0;
}

static int
add_str(Builder *b, PyObject *text)
{
    FastPath *fp = b->fp;
    if (grow((void **)&fp->strs, &b->strs_cap, fp->nstrs + 1, sizeof(Str)) < 0) return -1;
    if (add_text(b, text, &fp->strs[fp->nstrs]) < 0) return -1;
    fp->nstrs++;
    return 0;
}

static int
get_i64(PyObject *v, int64_t *out)
{
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

/* A segment: ("static", text) | (prefix, conv, suffix); conv: ("string", min, max|None) |
 * ("int", signed, fixed, min|None, max|None) | ("any", words) | ("path",). Returns its position,
 * or -1 with an exception. */
static int32_t
add_seg(Builder *b, PyObject *desc)
{
    FastPath *fp = b->fp;
    if (grow((void **)&fp->segs, &b->segs_cap, fp->nsegs + 1, sizeof(Seg)) < 0) return -1;
    Seg seg;
    memset(&seg, 0, sizeof(seg));
    if (!PyTuple_Check(desc) || (PyTuple_GET_SIZE(desc) != 2 && PyTuple_GET_SIZE(desc) != 3)) {
        PyErr_SetString(PyExc_ValueError, "a segment is a 2- or 3-tuple");
        return -1;
    }
    if (PyTuple_GET_SIZE(desc) == 2) {
        if (add_text(b, PyTuple_GET_ITEM(desc, 1), &seg.prefix) < 0) return -1;
    } else {
        seg.is_var = 1;
        if (add_text(b, PyTuple_GET_ITEM(desc, 0), &seg.prefix) < 0) return -1;
        if (add_text(b, PyTuple_GET_ITEM(desc, 2), &seg.suffix) < 0) return -1;
        PyObject *conv = PyTuple_GET_ITEM(desc, 1);
        if (!PyTuple_Check(conv) || PyTuple_GET_SIZE(conv) < 1) {
            PyErr_SetString(PyExc_ValueError, "a converter is a tuple");
            return -1;
        }
        PyObject *kind = PyTuple_GET_ITEM(conv, 0);
        Py_ssize_t n = PyTuple_GET_SIZE(conv);
        if (PyUnicode_CompareWithASCIIString(kind, "string") == 0 && n == 3) {
            seg.conv = CONV_STRING;
            if (get_i64(PyTuple_GET_ITEM(conv, 1), &seg.min) < 0) return -1;
            seg.max = -1;
            if (PyTuple_GET_ITEM(conv, 2) != Py_None) {
                if (get_i64(PyTuple_GET_ITEM(conv, 2), &seg.max) < 0) return -1;
            }
        } else if (PyUnicode_CompareWithASCIIString(kind, "int") == 0 && n == 5) {
            seg.conv = CONV_INT;
            seg.signed_ = (uint8_t)PyObject_IsTrue(PyTuple_GET_ITEM(conv, 1));
            int64_t fixed;
            if (get_i64(PyTuple_GET_ITEM(conv, 2), &fixed) < 0) return -1;
            seg.fixed = (uint32_t)fixed;
            if (PyTuple_GET_ITEM(conv, 3) != Py_None) {
                seg.has_min = 1;
                if (get_i64(PyTuple_GET_ITEM(conv, 3), &seg.min) < 0) return -1;
            }
            if (PyTuple_GET_ITEM(conv, 4) != Py_None) {
                seg.has_max = 1;
                if (get_i64(PyTuple_GET_ITEM(conv, 4), &seg.max) < 0) return -1;
            }
        } else if (PyUnicode_CompareWithASCIIString(kind, "any") == 0 && n == 2) {
            seg.conv = CONV_ANY;
            PyObject *words = PyTuple_GET_ITEM(conv, 1);
            if (!PyTuple_Check(words)) {
                PyErr_SetString(PyExc_ValueError, "any's words are a tuple");
                return -1;
            }
            seg.words = (uint32_t)fp->nstrs;
            seg.nwords = (uint32_t)PyTuple_GET_SIZE(words);
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(words); k++) {
                if (add_str(b, PyTuple_GET_ITEM(words, k)) < 0) return -1;
            }
        } else if (PyUnicode_CompareWithASCIIString(kind, "path") == 0 && n == 1) {
            seg.conv = CONV_PATH;
        } else {
            PyErr_SetString(PyExc_ValueError, "unknown converter");
            return -1;
        }
    }
    fp->segs[fp->nsegs] = seg;
    return (int32_t)fp->nsegs++;
}

static int
as_index(PyObject *v, Py_ssize_t limit, int32_t *out, int allow_none)
{
    if (v == Py_None && allow_none) {
        *out = -1;
        return 0;
    }
    Py_ssize_t x = PyLong_AsSsize_t(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < 0 || x >= limit) {
        PyErr_SetString(PyExc_ValueError, "a position out of range");
        return -1;
    }
    *out = (int32_t)x;
    return 0;
}

/* A rule: (rule, program, action).
 *   program: None (not handled) | (parts, tail): parts a tuple of segments, tail one or None;
 *   action: None (not handled) | (kind, stages, keep_query, status, headers, body, template);
 *   template: None | ("text", str) | ("format", pieces, picks): picks a tuple of (value, check). */
static int
add_rule(Builder *b, PyObject *desc, Py_ssize_t nvalues_limit)
{
    FastPath *fp = b->fp;
    Rule *r = &fp->rules[fp->nrules];
    memset(r, 0, sizeof(*r));
    r->tail = -1;
    if (!PyTuple_Check(desc) || PyTuple_GET_SIZE(desc) != 4) {
        PyErr_SetString(PyExc_ValueError, "a rule is (rule, program, action, position)");
        return -1;
    }
    r->rule = Py_NewRef(PyTuple_GET_ITEM(desc, 0));
    fp->nrules++; /* from here on, dealloc releases what the rule holds */
    int32_t position; /* `size`: the rule is not at its index (its hits are not counted here) */
    if (as_index(PyTuple_GET_ITEM(desc, 3), fp->size + 1, &position, 0) < 0) return -1;
    r = &fp->rules[fp->nrules - 1];
    r->position = (uint32_t)position;
    if (position == fp->size) fp->uncountable = 1;
    PyObject *program = PyTuple_GET_ITEM(desc, 1);
    PyObject *action = PyTuple_GET_ITEM(desc, 2);
    if (program != Py_None) {
        if (!PyTuple_Check(program) || PyTuple_GET_SIZE(program) != 2 ||
            !PyTuple_Check(PyTuple_GET_ITEM(program, 0))) {
            PyErr_SetString(PyExc_ValueError, "a program is (parts, tail)");
            return -1;
        }
        PyObject *parts = PyTuple_GET_ITEM(program, 0);
        uint32_t first = (uint32_t)fp->nints;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(parts); k++) {
            int32_t seg = add_seg(b, PyTuple_GET_ITEM(parts, k));
            if (seg < 0) return -1;
            if (add_int(b, (uint32_t)seg) < 0) return -1;
        }
        r = &fp->rules[fp->nrules - 1];
        r->parts = first;
        r->nparts = (uint32_t)PyTuple_GET_SIZE(parts);
        if (PyTuple_GET_ITEM(program, 1) != Py_None) {
            int32_t seg = add_seg(b, PyTuple_GET_ITEM(program, 1));
            if (seg < 0) return -1;
            r->tail = seg;
        }
        r->has_program = 1;
    }
    if (action == Py_None) return 0;
    if (!PyTuple_Check(action) || PyTuple_GET_SIZE(action) != 7) {
        PyErr_SetString(PyExc_ValueError, "an action is a 7-tuple");
        return -1;
    }
    PyObject *kind = PyTuple_GET_ITEM(action, 0);
    uint8_t act;
    if (PyUnicode_CompareWithASCIIString(kind, "redirect") == 0) act = ACT_REDIRECT;
    else if (PyUnicode_CompareWithASCIIString(kind, "rewrite") == 0) act = ACT_REWRITE;
    else if (PyUnicode_CompareWithASCIIString(kind, "respond") == 0) act = ACT_RESPOND;
    else if (PyUnicode_CompareWithASCIIString(kind, "pass") == 0) act = ACT_PASS;
    else {
        PyErr_SetString(PyExc_ValueError, "unknown action");
        return -1;
    }
    long stages = PyLong_AsLong(PyTuple_GET_ITEM(action, 1));
    if (stages == -1 && PyErr_Occurred()) return -1;
    r->stages = (uint8_t)stages;
    r->keep_query = (uint8_t)PyObject_IsTrue(PyTuple_GET_ITEM(action, 2));
    r->status = Py_NewRef(PyTuple_GET_ITEM(action, 3));
    r->headers = Py_NewRef(PyTuple_GET_ITEM(action, 4));
    r->body = Py_NewRef(PyTuple_GET_ITEM(action, 5));
    PyObject *template = PyTuple_GET_ITEM(action, 6);
    if (act == ACT_REDIRECT || act == ACT_REWRITE) {
        if (!PyTuple_Check(template) || PyTuple_GET_SIZE(template) < 2) {
            PyErr_SetString(PyExc_ValueError, "a redirect or rewrite needs its template");
            return -1;
        }
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(template, 0), "text") == 0) {
            PyObject *text = PyTuple_GET_ITEM(template, 1);
            if (!PyUnicode_Check(text)) {
                PyErr_SetString(PyExc_ValueError, "a fixed target is a str");
                return -1;
            }
            r->text_target = 1;
            r->text = Py_NewRef(text);
        } else {
            if (PyTuple_GET_SIZE(template) != 3) {
                PyErr_SetString(PyExc_ValueError, "a format is (format, pieces, picks)");
                return -1;
            }
            PyObject *pieces = PyTuple_GET_ITEM(template, 1);
            PyObject *picks = PyTuple_GET_ITEM(template, 2);
            if (!PyTuple_Check(pieces) || !PyTuple_Check(picks) ||
                PyTuple_GET_SIZE(pieces) != PyTuple_GET_SIZE(picks) + 1) {
                PyErr_SetString(PyExc_ValueError, "a format has one piece more than picks");
                return -1;
            }
            uint32_t first = (uint32_t)fp->nstrs;
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(pieces); k++) {
                if (add_str(b, PyTuple_GET_ITEM(pieces, k)) < 0) return -1;
            }
            uint32_t firstpick = (uint32_t)fp->nints;
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(picks); k++) {
                PyObject *pick = PyTuple_GET_ITEM(picks, k);
                int32_t value, check;
                if (!PyTuple_Check(pick) || PyTuple_GET_SIZE(pick) != 2) {
                    PyErr_SetString(PyExc_ValueError, "a pick is (value, check)");
                    return -1;
                }
                if (as_index(PyTuple_GET_ITEM(pick, 0), nvalues_limit, &value, 0) < 0) return -1;
                if (as_index(PyTuple_GET_ITEM(pick, 1), 3, &check, 0) < 0) return -1;
                if (add_int(b, (uint32_t)value) < 0 || add_int(b, (uint32_t)check) < 0) return -1;
            }
            r = &fp->rules[fp->nrules - 1];
            r->pieces = first;
            r->npieces = (uint32_t)PyTuple_GET_SIZE(pieces);
            r->picks = firstpick;
        }
    }
    r->action = act;
    return 0;
}

static int
table_insert(FastPath *fp, uint32_t base, uint32_t mask, Str key, int32_t child)
{
    uint64_t h = fnv(fp->pool + key.off, key.len);
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        Slot *s = &fp->slots[base + i];
        if (s->child < 0) {
            s->hash = h;
            s->key = key;
            s->child = child;
            return 0;
        }
    }
}

/* A node: ("leaf", rule) | ("branch", ordered, static, end, alts): static a tuple of
 * (text, node), end a rule or None, alts a tuple of ("edge", seg|None, node, gate) with gate
 * None | "static" | ("one", text), or ("tails", rules). */
static int
add_node(Builder *b, PyObject *desc, Py_ssize_t nnodes, Py_ssize_t nrules)
{
    FastPath *fp = b->fp;
    Node node;
    memset(&node, 0, sizeof(node));
    node.rule = -1;
    if (!PyTuple_Check(desc) || PyTuple_GET_SIZE(desc) < 2) goto bad;
    PyObject *kind = PyTuple_GET_ITEM(desc, 0);
    if (PyUnicode_CompareWithASCIIString(kind, "leaf") == 0) {
        node.is_leaf = 1;
        node.ordered = 1;
        if (as_index(PyTuple_GET_ITEM(desc, 1), nrules, &node.rule, 0) < 0) return -1;
        fp->nodes[fp->nnodes++] = node;
        return 0;
    }
    if (PyTuple_GET_SIZE(desc) != 5) goto bad;
    node.ordered = (uint8_t)PyObject_IsTrue(PyTuple_GET_ITEM(desc, 1));
    PyObject *statics = PyTuple_GET_ITEM(desc, 2);
    if (!PyTuple_Check(statics)) goto bad;
    if (as_index(PyTuple_GET_ITEM(desc, 3), nrules, &node.rule, 1) < 0) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(statics);
    if (n > 0) {
        uint32_t cap = 4;
        while (cap < 2 * (uint64_t)n) cap *= 2;
        node.slots = (uint32_t)fp->nslots;
        node.mask = cap - 1;
        if (grow((void **)&fp->slots, &b->slots_cap, fp->nslots + cap, sizeof(Slot)) < 0) return -1;
        for (uint32_t i = 0; i < cap; i++) fp->slots[fp->nslots + i].child = -1;
        fp->nslots += cap;
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *pair = PyTuple_GET_ITEM(statics, k);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) goto bad;
            Str key;
            int32_t child;
            if (add_text(b, PyTuple_GET_ITEM(pair, 0), &key) < 0) return -1;
            if (as_index(PyTuple_GET_ITEM(pair, 1), nnodes, &child, 0) < 0) return -1;
            table_insert(fp, node.slots, node.mask, key, child);
        }
    }
    PyObject *alts = PyTuple_GET_ITEM(desc, 4);
    if (!PyTuple_Check(alts)) goto bad;
    node.alts = (uint32_t)fp->nalts;
    node.nalts = (uint32_t)PyTuple_GET_SIZE(alts);
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(alts); k++) {
        PyObject *a = PyTuple_GET_ITEM(alts, k);
        Alt alt;
        memset(&alt, 0, sizeof(alt));
        alt.seg = -1;
        alt.target = -1;
        if (!PyTuple_Check(a) || PyTuple_GET_SIZE(a) < 2) goto bad;
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(a, 0), "tails") == 0) {
            alt.kind = ALT_TAILS;
            PyObject *tails = PyTuple_GET_ITEM(a, 1);
            if (!PyTuple_Check(tails)) goto bad;
            alt.tails = (uint32_t)fp->nints;
            alt.ntails = (uint32_t)PyTuple_GET_SIZE(tails);
            for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(tails); t++) {
                int32_t rule;
                if (as_index(PyTuple_GET_ITEM(tails, t), nrules, &rule, 0) < 0) return -1;
                if (add_int(b, (uint32_t)rule) < 0) return -1;
            }
        } else {
            if (PyTuple_GET_SIZE(a) != 4) goto bad;
            alt.kind = ALT_EDGE;
            if (PyTuple_GET_ITEM(a, 1) != Py_None) {
                alt.seg = add_seg(b, PyTuple_GET_ITEM(a, 1));
                if (alt.seg < 0) return -1;
            }
            if (as_index(PyTuple_GET_ITEM(a, 2), nnodes, &alt.target, 0) < 0) return -1;
            PyObject *gate = PyTuple_GET_ITEM(a, 3);
            if (gate == Py_None) alt.gate = GATE_NONE;
            else if (PyUnicode_Check(gate)) alt.gate = GATE_STATIC;
            else if (PyTuple_Check(gate) && PyTuple_GET_SIZE(gate) == 2) {
                alt.gate = GATE_ONE;
                if (add_text(b, PyTuple_GET_ITEM(gate, 1), &alt.one) < 0) return -1;
            } else goto bad;
        }
        if (grow((void **)&fp->alts, &b->alts_cap, fp->nalts + 1, sizeof(Alt)) < 0) return -1;
        fp->alts[fp->nalts++] = alt;
    }
    fp->nodes[fp->nnodes++] = node;
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "a malformed node");
    return -1;
}

/* The exact paths asked before the store: a tuple of (path, rule): the rule a lookup finds
 * first (with no action it covers, "not handled" as any such rule). */
static int
add_exact(Builder *b, PyObject *exact, Py_ssize_t nrules)
{
    FastPath *fp = b->fp;
    Py_ssize_t n = PyTuple_GET_SIZE(exact);
    if (n == 0) return 0;
    uint32_t cap = 4;
    while (cap < 2 * (uint64_t)n) cap *= 2;
    fp->exact_slots = (uint32_t)fp->nslots;
    fp->exact_mask = cap - 1;
    if (grow((void **)&fp->slots, &b->slots_cap, fp->nslots + cap, sizeof(Slot)) < 0) return -1;
    for (uint32_t i = 0; i < cap; i++) fp->slots[fp->nslots + i].child = -1;
    fp->nslots += cap;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *pair = PyTuple_GET_ITEM(exact, k);
        Str key;
        int32_t rule;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_ValueError, "an exact path is (path, rule)");
            return -1;
        }
        if (add_text(b, PyTuple_GET_ITEM(pair, 0), &key) < 0) return -1;
        if (as_index(PyTuple_GET_ITEM(pair, 1), nrules, &rule, 0) < 0) return -1;
        table_insert(fp, fp->exact_slots, fp->exact_mask, key, rule);
    }
    return 0;
}

static void
fastpath_dealloc(FastPath *self)
{
    for (Py_ssize_t k = 0; k < self->nrules; k++) {
        Rule *r = &self->rules[k];
        Py_XDECREF(r->rule);
        Py_XDECREF(r->status);
        Py_XDECREF(r->headers);
        Py_XDECREF(r->body);
        Py_XDECREF(r->text);
    }
    PyMem_RawFree(self->pool);
    PyMem_RawFree(self->nodes);
    PyMem_RawFree(self->alts);
    PyMem_RawFree(self->slots);
    PyMem_RawFree(self->segs);
    PyMem_RawFree(self->rules);
    PyMem_RawFree(self->ints);
    PyMem_RawFree(self->strs);
    PyMem_RawFree(self->counts);
    PyMem_RawFree(self->touched);
    Py_XDECREF(self->table);
    Py_XDECREF((PyObject *)self->store);
    Py_XDECREF(self->prefixes);
    Py_XDECREF(self->metas);
    Py_XDECREF(self->lazy_rules);
    Py_XDECREF(self->decision_type);
    for (int k = 0; k < 10; k++) Py_XDECREF(self->descr[k]);
    Py_XDECREF(self->no_match);
    Py_XDECREF(self->empty_tuple);
    Py_XDECREF(self->gate);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
fastpath_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"decision", "no_match", "exact",   "table", "store",
                            "prefixes", "metas",    "rules_of", "options", "nodes",
                            "rules",    "patterns", "size",     "guarded", "gate", NULL};
    PyObject *decision, *no_match, *exact, *table, *store, *prefixes, *metas, *lazy_rules, *nodes,
        *rules;
    int merge_slashes, slash_redirects, strict, patterns;
    Py_ssize_t size;
    PyObject *options;
    int guarded = 0;
    PyObject *gate = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OO!O!OOO!O!O!O!O!in|$pO:FastPath", names,
                                     &PyType_Type, &decision, &no_match, &PyTuple_Type, &exact,
                                     &PyDict_Type, &table,
                                     &store, &prefixes, &PyTuple_Type, &metas, &PyTuple_Type,
                                     &lazy_rules, &PyTuple_Type, &options, &PyTuple_Type, &nodes,
                                     &PyTuple_Type, &rules, &patterns, &size, &guarded,
                                     &gate)) {
        return NULL;
    }
    if (gate != Py_None && (!guarded || !PyObject_TypeCheck(gate, &GateType))) {
        PyErr_SetString(PyExc_TypeError, "gate: a Gate, for a guarded rule set, or None");
        return NULL;
    }
    if (!PyArg_ParseTuple(options, "ppp", &merge_slashes, &slash_redirects, &strict)) return NULL;
    if (store != Py_None && !PyObject_TypeCheck(store, &PlainStoreType)) {
        PyErr_SetString(PyExc_TypeError, "store must be a PlainStore or None");
        return NULL;
    }
    if (store != Py_None && !((PlainStore *)store)->frozen) {
        PyErr_SetString(PyExc_ValueError, "the store must be frozen");
        return NULL;
    }
    if (prefixes != Py_None && !PyTuple_Check(prefixes)) {
        PyErr_SetString(PyExc_TypeError, "prefixes must be a tuple or None");
        return NULL;
    }
    if (store != Py_None && PyTuple_GET_SIZE(metas) != PyTuple_GET_SIZE(((PlainStore *)store)->metas)) {
        PyErr_SetString(PyExc_ValueError, "one (status, keep_query, meta) per meta of the store");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(metas); k++) {
        PyObject *m = PyTuple_GET_ITEM(metas, k);
        if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) != 3) {
            PyErr_SetString(PyExc_ValueError, "metas: (status, keep_query, meta) each");
            return NULL;
        }
    }
    FastPath *self = (FastPath *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->decision_type = Py_NewRef(decision);
    self->no_match = Py_NewRef(no_match);
    self->table = Py_NewRef(table);
    self->store = store == Py_None ? NULL : (PlainStore *)Py_NewRef(store);
    self->prefixes = prefixes == Py_None ? NULL : Py_NewRef(prefixes);
    self->metas = Py_NewRef(metas);
    self->lazy_rules = Py_NewRef(lazy_rules);
    self->merge_slashes = merge_slashes;
    self->slash_redirects = slash_redirects;
    self->strict = strict;
    self->patterns = patterns;
    self->guarded = guarded;
    self->gate = gate == Py_None ? NULL : Py_NewRef(gate);
    if (size < 0 || size > (Py_ssize_t)INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "size: the rule set's rules, 0 to 2**31 - 1");
        goto fail;
    }
    self->size = size;
    self->empty_tuple = PyTuple_New(0);
    if (self->empty_tuple == NULL) goto fail;
    for (int k = 0; k < 10; k++) {
        PyObject *d = PyObject_GetAttrString(decision, FIELDS[k]);
        if (d == NULL) goto fail;
        /* A slot of the class itself (a member descriptor holding an object), so that a new
         * Decision's slot can be written in place, as the descriptor's own __set__ does. */
        if (!Py_IS_TYPE(d, &PyMemberDescr_Type) ||
            ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX ||
            (((PyMemberDescrObject *)d)->d_member->flags & READONLY)) {
            Py_DECREF(d);
            PyErr_Format(PyExc_TypeError, "Decision.%s is no slot", FIELDS[k]);
            goto fail;
        }
        self->descr[k] = d;
        self->offset[k] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    Builder b;
    memset(&b, 0, sizeof(b));
    b.fp = self;
    Py_ssize_t nrules = PyTuple_GET_SIZE(rules), nnodes = PyTuple_GET_SIZE(nodes);
    if (grow((void **)&self->rules, &b.rules_cap, nrules + 1, sizeof(Rule)) < 0) goto fail;
    if (grow((void **)&self->nodes, &b.nodes_cap, nnodes + 1, sizeof(Node)) < 0) goto fail;
    if (grow((void **)&self->pool, &b.pool_cap, 1, 1) < 0) goto fail;
    for (Py_ssize_t k = 0; k < nrules; k++) {
        if (add_rule(&b, PyTuple_GET_ITEM(rules, k), MAX_VALUES) < 0) goto fail;
    }
    for (Py_ssize_t k = 0; k < nnodes; k++) {
        if (add_node(&b, PyTuple_GET_ITEM(nodes, k), nnodes, nrules) < 0) goto fail;
    }
    if (add_exact(&b, exact, nrules) < 0) goto fail;
    if (patterns == 1 && nnodes == 0) {
        PyErr_SetString(PyExc_ValueError, "an index needs its root");
        goto fail;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* -- matching ------------------------------------------------------------------------------- */

typedef struct {
    const char *s;      /* the path (ASCII) */
    Py_ssize_t n;       /* its length, trailing slashes stripped for the walk */
    int nseg;           /* segments: text between slashes, segs[0] the empty one before '/' */
    Py_ssize_t start[MAX_SEGMENTS + 1];
    Py_ssize_t end[MAX_SEGMENTS + 1];
    int nvalues;
    Py_ssize_t vstart[MAX_VALUES], vlen[MAX_VALUES];
    int64_t vint[MAX_VALUES];
    uint8_t visint[MAX_VALUES];
} Walk;

static int
digits_value(const char *p, Py_ssize_t n, int signed_, int64_t *out)
{
    int neg = 0;
    if (signed_ && n > 0 && p[0] == '-') {
        neg = 1;
        p++;
        n--;
    }
    if (n < 1 || n > 18) return n < 1 ? 0 : -1; /* -1: too long for this road */
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

/* Whether `text` (n bytes) matches segment `seg`; a variable's value is recorded when `w`.
 * 1: yes, 0: no, -1: not handled. `tail`: the text may hold '/' (the path converter). */
static int
match_seg(FastPath *fp, const Seg *seg, const char *text, Py_ssize_t n, Walk *w)
{
    const char *pre = fp->pool + seg->prefix.off;
    if (!seg->is_var) return (Py_ssize_t)seg->prefix.len == n && memcmp(pre, text, (size_t)n) == 0;
    Py_ssize_t pl = seg->prefix.len, sl = seg->suffix.len;
    if (n < pl + sl + 1) return 0;
    if (memcmp(pre, text, (size_t)pl) != 0) return 0;
    if (memcmp(fp->pool + seg->suffix.off, text + n - sl, (size_t)sl) != 0) return 0;
    const char *m = text + pl;
    Py_ssize_t ml = n - pl - sl;
    int64_t number = 0;
    int isint = 0;
    switch (seg->conv) {
    case CONV_STRING:
        if (memchr(m, '/', (size_t)ml) != NULL) return 0;
        if (ml < seg->min || (seg->max >= 0 && ml > seg->max)) return 0;
        break;
    case CONV_PATH:
        if (m[0] == '/') return 0;
        break;
    case CONV_ANY: {
        uint32_t k;
        for (k = 0; k < seg->nwords; k++) {
            const Str *word = &fp->strs[seg->words + k];
            if ((Py_ssize_t)word->len == ml && memcmp(fp->pool + word->off, m, (size_t)ml) == 0)
                break;
        }
        if (k == seg->nwords) return 0;
        break;
    }
    case CONV_INT: {
        int r = digits_value(m, ml, seg->signed_, &number);
        if (r <= 0) return r;
        if (seg->fixed && ml != (Py_ssize_t)seg->fixed) return 0;
        if ((seg->has_min && number < seg->min) || (seg->has_max && number > seg->max)) return 0;
        isint = 1;
        break;
    }
    default:
        return -1;
    }
    if (w != NULL) {
        if (w->nvalues >= MAX_VALUES) return -1;
        w->vstart[w->nvalues] = m - w->s;
        w->vlen[w->nvalues] = ml;
        w->vint[w->nvalues] = number;
        w->visint[w->nvalues] = (uint8_t)isint;
        w->nvalues++;
    }
    return 1;
}

/* Whether rule `r`'s whole pattern matches the path, recording its values: 1, 0 or -1. */
static int
run_program(FastPath *fp, const Rule *r, Walk *w)
{
    if (!r->has_program) return -1;
    w->nvalues = 0;
    int nparts = (int)r->nparts;
    int segments = w->nseg - 1;
    if (r->tail < 0 ? segments != nparts : segments <= nparts) return 0;
    for (int k = 0; k < nparts; k++) {
        const Seg *seg = &fp->segs[fp->ints[r->parts + k]];
        int got = match_seg(fp, seg, w->s + w->start[k + 1], w->end[k + 1] - w->start[k + 1], w);
        if (got != 1) return got;
    }
    if (r->tail >= 0) {
        Py_ssize_t from = w->start[nparts + 1];
        return match_seg(fp, &fp->segs[r->tail], w->s + from, w->n - from, w);
    }
    return 1;
}

static inline int
segment_is(Walk *w, int d, const char *text, size_t len)
{
    return (size_t)(w->end[d] - w->start[d]) == len && memcmp(w->s + w->start[d], text, len) == 0;
}

static int32_t
static_child(FastPath *fp, const Node *node, Walk *w, int d)
{
    if (node->mask == 0) return -1;
    const char *text = w->s + w->start[d];
    size_t len = (size_t)(w->end[d] - w->start[d]);
    uint64_t h = fnv(text, len);
    for (uint32_t i = (uint32_t)h & node->mask;; i = (i + 1) & node->mask) {
        const Slot *s = &fp->slots[node->slots + i];
        if (s->child < 0) return -1;
        if (s->hash == h && s->key.len == len && memcmp(fp->pool + s->key.off, text, len) == 0)
            return s->child;
    }
}

static int32_t walk_node(FastPath *fp, const Node *node, Walk *w, int d);

static int32_t
try_node(FastPath *fp, int32_t at, Walk *w, int d)
{
    const Node *node = &fp->nodes[at];
    if (node->is_leaf) {
        int got = run_program(fp, &fp->rules[node->rule], w);
        return got == 1 ? node->rule : (got == 0 ? MISS : UNHANDLED);
    }
    return walk_node(fp, node, w, d);
}

/* The first candidate below `node`, reached by segment d (as _index._walk). */
static int32_t
walk_node(FastPath *fp, const Node *node, Walk *w, int d)
{
    if (!node->ordered) return UNHANDLED;
    d += 1;
    if (d == w->nseg) return node->rule >= 0 ? node->rule : MISS;
    if (node->mask != 0) {
        int32_t child = static_child(fp, node, w, d);
        if (child >= 0) {
            int32_t found = try_node(fp, child, w, d);
            if (found != MISS) return found;
        }
    }
    for (uint32_t k = 0; k < node->nalts; k++) {
        const Alt *alt = &fp->alts[node->alts + k];
        if (alt->kind == ALT_TAILS) {
            for (uint32_t t = 0; t < alt->ntails; t++) {
                int32_t rule = (int32_t)fp->ints[alt->tails + t];
                const Rule *r = &fp->rules[rule];
                if (!r->has_program || r->tail < 0) return UNHANDLED;
                /* the tail, against the rest of the path after segment d's '/' */
                Py_ssize_t from = w->start[d];
                int got = match_seg(fp, &fp->segs[r->tail], w->s + from, w->n - from, NULL);
                if (got < 0) return UNHANDLED;
                if (got == 1) return rule;
            }
            continue;
        }
        if (alt->gate == GATE_STATIC || alt->gate == GATE_ONE) {
            if (d + 1 == w->nseg) continue;
            if (alt->gate == GATE_ONE) {
                if (!segment_is(w, d + 1, fp->pool + alt->one.off, alt->one.len)) continue;
            } else if (static_child(fp, &fp->nodes[alt->target], w, d + 1) < 0) {
                continue;
            }
        }
        if (alt->seg < 0) return UNHANDLED;
        int got = match_seg(fp, &fp->segs[alt->seg], w->s + w->start[d], w->end[d] - w->start[d],
                            NULL);
        if (got < 0) return UNHANDLED;
        if (got == 0) continue;
        int32_t found = try_node(fp, alt->target, w, d);
        if (found != MISS) return found;
    }
    return MISS;
}

/* -- answering ------------------------------------------------------------------------------ */

static PyObject *
new_decision(FastPath *fp, PyObject *action, PyObject *status, PyObject *location,
             PyObject *path, PyObject *query, PyObject *headers, PyObject *body, PyObject *rule,
             PyObject *lazy)
{
    PyTypeObject *type = (PyTypeObject *)fp->decision_type;
    PyObject *d = type->tp_alloc(type, 0);
    if (d == NULL) return NULL;
    PyObject *values[10] = {action, status, location, path, query, headers, body, rule,
                            fp->empty_tuple, lazy};
    /* tp_alloc zeroed the slots (unset: `rule` of a stored rule, looked up when first read, and
     * `auth`, which Decision.__getattr__ reads as None) */
    for (int k = 0; k < 10; k++) {
        if (k == F_RULE && lazy != Py_None) continue;
        *(PyObject **)((char *)d + fp->offset[k]) = Py_NewRef(values[k]);
    }
    return d;
}

static const char HEX[] = "0123456789ABCDEF";

/* Bytes quote() keeps in a query (waypost.engine._plans._QUERY_SAFE and the unreserved). */
static int
query_safe(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c != 0 && strchr("=&+%/:@!$'()*,;?-._~", c) != NULL;
}

/* `location` + '?' + the query re-quoted, as merge_query() writes it for a location without
 * '?' or '#' and an ASCII query; NULL without an exception: not handled. */
static PyObject *
with_query(const char *loc, Py_ssize_t loclen, const char *q, Py_ssize_t qlen)
{
    if (memchr(loc, '?', (size_t)loclen) || memchr(loc, '#', (size_t)loclen)) return NULL;
    Py_ssize_t extra = 0;
    for (Py_ssize_t i = 0; i < qlen; i++) extra += query_safe((unsigned char)q[i]) ? 1 : 3;
    PyObject *out = PyUnicode_New(loclen + 1 + extra, 127);
    if (out == NULL) return NULL;
    char *o = PyUnicode_DATA(out);
    memcpy(o, loc, (size_t)loclen);
    o += loclen;
    *o++ = '?';
    for (Py_ssize_t i = 0; i < qlen; i++) {
        unsigned char c = (unsigned char)q[i];
        if (query_safe(c)) *o++ = (char)c;
        else {
            *o++ = '%';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
    }
    return out;
}

static int
plain_char(char c, int slash)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '~' || c == '-' || (slash && c == '/');
}

/* The target of rule `r` filled from the walk's values: a new ASCII str, or NULL (no
 * exception: a value needs the general build). */
static PyObject *
fill(FastPath *fp, const Rule *r, Walk *w)
{
    char numbers[MAX_VALUES][24];
    Py_ssize_t total = 0;
    uint32_t npicks = r->npieces - 1;
    for (uint32_t k = 0; k < r->npieces; k++) total += fp->strs[r->pieces + k].len;
    for (uint32_t k = 0; k < npicks; k++) {
        uint32_t v = fp->ints[r->picks + 2 * k], check = fp->ints[r->picks + 2 * k + 1];
        if ((int)v >= w->nvalues) return NULL;
        if (w->visint[v]) {
            total += snprintf(numbers[v], sizeof(numbers[v]), "%lld", (long long)w->vint[v]);
            continue;
        }
        const char *s = w->s + w->vstart[v];
        Py_ssize_t n = w->vlen[v];
        if (check == CHECK_TEXT || check == CHECK_PATH) {
            if (n < 1 || !plain_char(s[0], 0)) return NULL;
            for (Py_ssize_t i = 1; i < n; i++) {
                if (!plain_char(s[i], check == CHECK_PATH)) return NULL;
            }
        } else {
            /* a str placeholder with no check: only plain text goes this way too */
            for (Py_ssize_t i = 0; i < n; i++) {
                if (!plain_char(s[i], 0)) return NULL;
            }
        }
        total += n;
    }
    PyObject *out = PyUnicode_New(total, 127);
    if (out == NULL) return NULL;
    char *o = PyUnicode_DATA(out);
    for (uint32_t k = 0; k < r->npieces; k++) {
        const Str *piece = &fp->strs[r->pieces + k];
        memcpy(o, fp->pool + piece->off, piece->len);
        o += piece->len;
        if (k == npicks) break;
        uint32_t v = fp->ints[r->picks + 2 * k];
        if (w->visint[v]) {
            size_t len = strlen(numbers[v]);
            memcpy(o, numbers[v], len);
            o += len;
        } else {
            memcpy(o, w->s + w->vstart[v], (size_t)w->vlen[v]);
            o += w->vlen[v];
        }
    }
    return out;
}

/* One hit of the rule at `position`, when counting (see start_counting()). */
static inline void
count_hit(FastPath *fp, uint32_t position)
{
    if (fp->counts != NULL && (Py_ssize_t)position < fp->size) {
        if (fp->counts[position]++ == 0) fp->touched[fp->ntouched++] = position;
    }
}

/* The decision of pattern rule `r`, or None: not handled. */
static PyObject *
apply_rule(FastPath *fp, const Rule *r, Walk *w, int stage, const char *q, Py_ssize_t qlen)
{
    if (r->action == 0 || !(r->stages & stage)) Py_RETURN_NONE;
    fp->last = r->position; /* counted only if a decision comes of it */
    if (r->action == ACT_RESPOND) {
        return new_decision(fp, S_RESPOND, r->status, Py_None, Py_None, Py_None, r->headers,
                            r->body, r->rule, Py_None);
    }
    if (r->action == ACT_PASS) {
        return new_decision(fp, S_PASS, Py_None, Py_None, Py_None, Py_None, fp->empty_tuple,
                            Py_None, r->rule, Py_None);
    }
    PyObject *location;
    if (r->text_target) {
        location = Py_NewRef(r->text);
    } else {
        if (w == NULL) Py_RETURN_NONE; /* an exact rule: its target is text, or Python's */
        int got = run_program(fp, r, w);
        if (got != 1) Py_RETURN_NONE; /* 0: the walk and the program disagree: never guess */
        location = fill(fp, r, w);
        if (location == NULL) {
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
    }
    if (qlen > 0 && r->keep_query) {
        if (!PyUnicode_IS_ASCII(location)) {
            Py_DECREF(location);
            Py_RETURN_NONE;
        }
        PyObject *merged = with_query(PyUnicode_DATA(location), PyUnicode_GET_LENGTH(location), q,
                                      qlen);
        Py_DECREF(location);
        if (merged == NULL) {
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        location = merged;
    }
    PyObject *out;
    if (r->action == ACT_REDIRECT) {
        out = new_decision(fp, S_REDIRECT, r->status, location, Py_None, Py_None, fp->empty_tuple,
                           Py_None, r->rule, Py_None);
    } else {
        Py_ssize_t at = PyUnicode_FindChar(location, '?', 0, PyUnicode_GET_LENGTH(location), 1);
        if (at == -2) {
            Py_DECREF(location);
            return NULL;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(location);
        PyObject *path = at < 0 ? Py_NewRef(location) : PyUnicode_Substring(location, 0, at);
        PyObject *query = at < 0 ? PyUnicode_New(0, 127) : PyUnicode_Substring(location, at + 1, n);
        if (path == NULL || query == NULL) {
            Py_XDECREF(path);
            Py_XDECREF(query);
            Py_DECREF(location);
            return NULL;
        }
        out = new_decision(fp, S_REWRITE, Py_None, Py_None, path, query, r->headers, Py_None,
                           r->rule, Py_None);
        Py_DECREF(path);
        Py_DECREF(query);
    }
    Py_DECREF(location);
    return out;
}

/* The redirect of the store's record `rec`, or None: not handled. */
static PyObject *
apply_record(FastPath *fp, const char *rec, const char *q, Py_ssize_t qlen)
{
    Head h;
    read_head(rec, &h);
    fp->last = h.index & ~DUP;
    PyObject *info = PyTuple_GET_ITEM(fp->metas, h.meta);
    PyObject *location;
    const char *target = rec + HEAD + h.klen;
    if (qlen > 0 && PyObject_IsTrue(PyTuple_GET_ITEM(info, 1))) {
        location = with_query(target, h.tlen, q, qlen);
        if (location == NULL) {
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
    } else {
        location = PyUnicode_New(h.tlen, 127);
        if (location == NULL) return NULL;
        memcpy(PyUnicode_DATA(location), target, h.tlen);
    }
    PyObject *index = PyLong_FromUnsignedLong(h.index);
    PyObject *lazy = index == NULL ? NULL : PyTuple_New(3);
    if (lazy == NULL) {
        Py_XDECREF(index);
        Py_DECREF(location);
        return NULL;
    }
    PyTuple_SET_ITEM(lazy, 0, Py_NewRef(fp->lazy_rules));
    PyTuple_SET_ITEM(lazy, 1, index);
    PyTuple_SET_ITEM(lazy, 2, Py_NewRef(PyTuple_GET_ITEM(info, 2)));
    PyObject *out = new_decision(fp, S_REDIRECT, PyTuple_GET_ITEM(info, 0), location, Py_None,
                                 Py_None, fp->empty_tuple, Py_None, Py_None, lazy);
    Py_DECREF(lazy);
    Py_DECREF(location);
    return out;
}

static int
stage_of(PyObject *stage)
{
    if (stage == S_ALL) return STAGE_ALL;
    if (stage == S_BEFORE) return STAGE_BEFORE;
    if (stage == S_MISSING) return STAGE_MISSING;
    if (!PyUnicode_Check(stage)) return 0;
    if (PyUnicode_Compare(stage, S_ALL) == 0) return STAGE_ALL;
    if (PyUnicode_Compare(stage, S_BEFORE) == 0) return STAGE_BEFORE;
    if (PyUnicode_Compare(stage, S_MISSING) == 0) return STAGE_MISSING;
    PyErr_Clear();
    return 0;
}

/* The answer for a decoded ASCII path (`path` its str when it is the whole of it, else NULL)
 * and the raw query. */
static PyObject *
answer(FastPath *fp, PyObject *path_obj, const char *s, Py_ssize_t n, const char *q,
       Py_ssize_t qlen, int stage)
{
    fp->last = -1;
    if (n < 1 || s[0] != '/') Py_RETURN_NONE;
    /* dot segments and repeated slashes: the Python road (their normal form comes first) */
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        if (s[i] == '/' && (s[i + 1] == '.' || (s[i + 1] == '/' && fp->merge_slashes)))
            Py_RETURN_NONE;
    }
    /* -- the exact rules */
    Py_ssize_t keylen = n;
    while (keylen > 1 && s[keylen - 1] == '/') keylen--;
    int exact = 1;
    if (fp->prefixes != NULL) {
        exact = 0;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(fp->prefixes); k++) {
            PyObject *p = PyTuple_GET_ITEM(fp->prefixes, k);
            Py_ssize_t pl = PyUnicode_GET_LENGTH(p);
            if (PyUnicode_IS_ASCII(p) && pl <= n && memcmp(PyUnicode_DATA(p), s, (size_t)pl) == 0) {
                exact = 1;
                break;
            }
            if (!PyUnicode_IS_ASCII(p)) {
                exact = 1; /* never mind: look */
                break;
            }
        }
    }
    if (exact && fp->exact_mask != 0) {
        uint64_t h = fnv(s, (size_t)keylen);
        for (uint32_t i = (uint32_t)h & fp->exact_mask;; i = (i + 1) & fp->exact_mask) {
            const Slot *slot = &fp->slots[fp->exact_slots + i];
            if (slot->child < 0) break;
            if (slot->hash == h && slot->key.len == (uint32_t)keylen &&
                memcmp(fp->pool + slot->key.off, s, (size_t)keylen) == 0) {
                return apply_rule(fp, &fp->rules[slot->child], NULL, stage, q, qlen);
            }
        }
    }
    if (exact && (fp->store != NULL || PyDict_GET_SIZE(fp->table) > 0)) {
        PyObject *key;
        if (path_obj != NULL && keylen == n) key = Py_NewRef(path_obj);
        else {
            key = PyUnicode_New(keylen, 127);
            if (key == NULL) return NULL;
            memcpy(PyUnicode_DATA(key), s, (size_t)keylen);
        }
        if (PyDict_GET_SIZE(fp->table) > 0) {
            PyObject *hit = PyDict_GetItemWithError(fp->table, key);
            if (hit != NULL || PyErr_Occurred()) {
                Py_DECREF(key);
                if (hit == NULL) return NULL;
                Py_RETURN_NONE; /* a rule of the dict: the Python road */
            }
        }
        const char *rec = fp->store == NULL ? NULL : find_record(fp->store, key);
        Py_DECREF(key);
        if (rec != NULL) {
            if (stage != STAGE_ALL) Py_RETURN_NONE;
            return apply_record(fp, rec, q, qlen);
        }
    }
    /* -- the patterns */
    if (fp->patterns == 2) Py_RETURN_NONE;
    int32_t found = MISS;
    if (fp->patterns == 1) {
        Walk w;
        w.s = s;
        w.n = fp->strict ? n : keylen;
        w.nvalues = 0;
        int nseg = 0;
        Py_ssize_t from = 0;
        for (Py_ssize_t i = 0; i <= w.n; i++) {
            if (i == w.n || s[i] == '/') {
                if (nseg > MAX_SEGMENTS) Py_RETURN_NONE;
                w.start[nseg] = from;
                w.end[nseg] = i;
                nseg++;
                from = i + 1;
            }
        }
        w.nseg = nseg;
        found = walk_node(fp, &fp->nodes[0], &w, 0);
        if (found == UNHANDLED) Py_RETURN_NONE;
        if (found >= 0) return apply_rule(fp, &fp->rules[found], &w, stage, q, qlen);
    }
    if (fp->slash_redirects) Py_RETURN_NONE;
    return Py_NewRef(fp->no_match);
}

PyDoc_STRVAR(resolve_doc,
"resolve(request, url, stage) -> Decision or None\n\n"
"What Engine.resolve(request, url, stage=stage) answers, or None when this request needs the\n"
"Python road. ``request`` is a Request (``url`` None) or a method (``url`` a path and query).");

/* A Request's decoded path and raw query (new references) when both are ASCII str: 1; else 0,
 * and the Python road answers (a missing attribute is not an error here). */
static int
request_parts(PyObject *request, PyObject **path, PyObject **query)
{
    *path = PyObject_GetAttr(request, S_PATH);
    *query = *path == NULL ? NULL : PyObject_GetAttr(request, S_QUERY_STRING);
    if (*query != NULL && PyUnicode_Check(*path) && PyUnicode_IS_ASCII(*path) &&
        PyUnicode_Check(*query) &&
        (PyUnicode_GET_LENGTH(*query) == 0 || PyUnicode_IS_ASCII(*query)))
        return 1;
    PyErr_Clear();
    Py_CLEAR(*path);
    Py_CLEAR(*query);
    return 0;
}

/* The rules' answer for (request, url, stage), or None. */
static PyObject *
rules_parts(FastPath *self, PyObject *request, PyObject *url, int stage)
{
    if (url == Py_None) {
        PyObject *path, *query;
        if (!request_parts(request, &path, &query)) Py_RETURN_NONE;
        PyObject *out = answer(self, path, PyUnicode_DATA(path), PyUnicode_GET_LENGTH(path),
                               PyUnicode_DATA(query), PyUnicode_GET_LENGTH(query), stage);
        Py_DECREF(path);
        Py_DECREF(query);
        return out;
    }
    if (!PyUnicode_Check(url) || !PyUnicode_IS_ASCII(url) || !PyUnicode_Check(request))
        Py_RETURN_NONE;
    const char *s = PyUnicode_DATA(url);
    Py_ssize_t n = PyUnicode_GET_LENGTH(url);
    if (n < 1 || s[0] != '/' || memchr(s, '#', (size_t)n) != NULL) Py_RETURN_NONE;
    const char *mark = memchr(s, '?', (size_t)n);
    Py_ssize_t plen = mark == NULL ? n : mark - s;
    if (memchr(s, '%', (size_t)plen) != NULL) Py_RETURN_NONE; /* decoded on the Python road */
    const char *q = mark == NULL ? s + n : mark + 1;
    return answer(self, mark == NULL ? url : NULL, s, plen, q, n - (q - s), stage);
}

#define SLOT(fp, d, k) (*(PyObject **)((char *)(d) + (fp)->offset[k]))

/* The rules' decision `d` (a new reference) as a request the guards let through gets it, as
 * Engine._guarded() finishes it: with `identity` (guards passed), the guards' Vary and on a
 * rewrite or a pass the identity headers; without (no guard to pass), `d` itself. None (not
 * handled) for a rewrite into a guarded area (checked again on the Python road) and for a
 * rule's own set_headers on a rewrite or a pass (the identity headers are taken out of them and
 * merged there). */
static PyObject *
let_through(FastPath *fp, PyObject *d, PyObject *identity)
{
    if (d == fp->no_match && identity == NULL) return d;
    if (d == fp->no_match) {
        Py_DECREF(d);
        d = new_decision(fp, S_PASS, Py_None, Py_None, Py_None, Py_None, identity, Py_None,
                         Py_None, Py_None);
        if (d == NULL) return NULL;
        Py_SETREF(SLOT(fp, d, F_VARY), Py_NewRef(gate_vary(fp->gate)));
        return d;
    }
    if (Py_REFCNT(d) != 1 && identity != NULL) goto unhandled; /* never change a shared one */
    PyObject *action = SLOT(fp, d, F_ACTION);
    if (action == S_REWRITE) {
        PyObject *path = SLOT(fp, d, F_PATH);
        if (!PyUnicode_Check(path) || !PyUnicode_IS_ASCII(path)) goto unhandled;
        const char *s = PyUnicode_DATA(path);
        Py_ssize_t n = PyUnicode_GET_LENGTH(path);
        if (memchr(s, '%', (size_t)n) != NULL) goto unhandled; /* read decoded: Python's */
        int guarded = gate_matches(fp->gate, s, n);
        if (guarded < 0) {
            Py_DECREF(d);
            return NULL;
        }
        if (guarded) goto unhandled;
    }
    if (action == S_REWRITE || action == S_PASS) {
        PyObject *headers = SLOT(fp, d, F_HEADERS);
        if (!PyTuple_Check(headers) || PyTuple_GET_SIZE(headers) > 0) goto unhandled;
        if (identity != NULL) Py_SETREF(SLOT(fp, d, F_HEADERS), Py_NewRef(identity));
    }
    if (identity != NULL) Py_SETREF(SLOT(fp, d, F_VARY), Py_NewRef(gate_vary(fp->gate)));
    return d;
unhandled:
    Py_DECREF(d);
    fp->last = -1;
    Py_RETURN_NONE;
}

/* A guarded rule set's answer for a Request: when the gate lets it through from what the guards
 * remember, or no guard rule matches its path, the rules' decision as the guard layer finishes
 * it; otherwise None. */
static PyObject *
guarded_parts(FastPath *self, PyObject *request, PyObject *url, int stage)
{
    PyObject *path, *query;
    if (self->gate == NULL || url != Py_None || !request_parts(request, &path, &query))
        Py_RETURN_NONE;
    PyObject *out = NULL, *identity = NULL;
    int passed = gate_pass(self->gate, request, PyUnicode_DATA(path), PyUnicode_GET_LENGTH(path),
                           &identity);
    if (passed <= 0) {
        out = passed < 0 ? NULL : Py_NewRef(Py_None);
        goto done;
    }
    out = answer(self, path, PyUnicode_DATA(path), PyUnicode_GET_LENGTH(path),
                 PyUnicode_DATA(query), PyUnicode_GET_LENGTH(query), stage);
    if (out != NULL && out != Py_None) out = let_through(self, out, identity);
done:
    Py_XDECREF(identity);
    Py_DECREF(path);
    Py_DECREF(query);
    return out;
}

/* resolve()'s answer for (request, url, stage), or None. */
static PyObject *
resolve_parts(FastPath *self, PyObject *request, PyObject *url, PyObject *stage_name)
{
    self->last = -1;
    int stage = stage_of(stage_name);
    if (stage == 0) Py_RETURN_NONE;
    if (self->guarded) return guarded_parts(self, request, url, stage);
    return rules_parts(self, request, url, stage);
}

static PyObject *
fastpath_resolve(FastPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "resolve() takes request, url and stage");
        return NULL;
    }
    return resolve_parts(self, args[0], args[1], args[2]);
}

PyDoc_STRVAR(resolve_rules_doc,
"resolve_rules(request, url, stage) -> Decision or None\n\n"
"As resolve(), for the rules alone: a guarded rule set's guard layer asks it once the guards\n"
"let the request through.");

static PyObject *
fastpath_resolve_rules(FastPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "resolve_rules() takes request, url and stage");
        return NULL;
    }
    self->last = -1;
    int stage = stage_of(args[2]);
    if (stage == 0) Py_RETURN_NONE;
    return rules_parts(self, args[0], args[1], stage);
}

PyDoc_STRVAR(resolve_path_doc,
"resolve_path(path, query, stage) -> Decision or None\n\n"
"As resolve() for a request given as its decoded path and raw query string (both str).");

static PyObject *
fastpath_resolve_path(FastPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "resolve_path() takes path, query and stage");
        return NULL;
    }
    PyObject *path = args[0], *query = args[1];
    int stage = stage_of(args[2]);
    /* a guarded rule set: the guards read more of the request than its path and query */
    if (stage == 0 || self->guarded || !PyUnicode_Check(path) || !PyUnicode_IS_ASCII(path) ||
        !PyUnicode_Check(query) || !PyUnicode_IS_ASCII(query))
        Py_RETURN_NONE;
    return answer(self, path, PyUnicode_DATA(path), PyUnicode_GET_LENGTH(path),
                  PyUnicode_DATA(query), PyUnicode_GET_LENGTH(query), stage);
}

PyDoc_STRVAR(resolve_counted_doc,
"resolve_counted(request, url, stage) -> Decision or None\n\n"
"As resolve(), and a decision it makes counts a hit of its rule (see start_counting()).");

static PyObject *
fastpath_resolve_counted(FastPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *out = fastpath_resolve(self, args, nargs);
    if (out != NULL && out != Py_None && self->last >= 0) count_hit(self, (uint32_t)self->last);
    return out;
}

PyDoc_STRVAR(start_counting_doc,
"start_counting() -> bool\n\n"
"Count the hits of resolve_counted()'s decisions by rule position from now on (8 bytes a rule);\n"
"False when it cannot: a rule of the rule set is not at the position its index says.");

static PyObject *
fastpath_start_counting(FastPath *self, PyObject *unused)
{
    if (self->uncountable) Py_RETURN_FALSE;
    if (self->counts == NULL && self->size > 0) {
        self->counts = PyMem_RawCalloc((size_t)self->size, sizeof(uint32_t));
        self->touched = PyMem_RawMalloc((size_t)self->size * sizeof(uint32_t));
        if (self->counts == NULL || self->touched == NULL) {
            PyMem_RawFree(self->counts);
            PyMem_RawFree(self->touched);
            self->counts = self->touched = NULL;
            return PyErr_NoMemory();
        }
    }
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(drain_into_doc,
"drain_into(slots, when, touched) -> hits\n\n"
"Add the hits counted since the last drain to ``slots`` (a writable buffer of doubles, three a\n"
"rule position: hits, first and last hit, as waypost.stats.rules.PositionHits keeps them) at\n"
"Unix time ``when``, append each position hit that had no first hit to the list ``touched``,\n"
"and start counting afresh; the number of hits drained.");

static PyObject *
fastpath_drain_into(FastPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "drain_into() takes slots, when and a list");
        return NULL;
    }
    double when = PyFloat_AsDouble(args[1]);
    if (when == -1.0 && PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE | PyBUF_FORMAT) < 0) return NULL;
    if (view.itemsize != sizeof(double) || view.format == NULL || strcmp(view.format, "d") != 0 ||
        view.len < (Py_ssize_t)(3 * sizeof(double)) * self->size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "slots: doubles, three for each rule position");
        return NULL;
    }
    double *slots = view.buf;
    unsigned long long total = 0;
    for (Py_ssize_t k = 0; k < self->ntouched; k++) {
        uint32_t position = self->touched[k];
        double *at = slots + 3 * (size_t)position;
        uint32_t hits = self->counts[position];
        self->counts[position] = 0;
        total += hits;
        at[0] += hits;
        if (at[1] == 0.0) {
            at[1] = when;
            PyObject *p = PyLong_FromUnsignedLong(position);
            if (p == NULL || PyList_Append(args[2], p) < 0) {
                Py_XDECREF(p);
                /* what is left stays counted for the next drain */
                memmove(self->touched, self->touched + k + 1,
                        (size_t)(self->ntouched - k - 1) * sizeof(uint32_t));
                self->ntouched -= k + 1;
                PyBuffer_Release(&view);
                return NULL;
            }
            Py_DECREF(p);
        }
        at[2] = when;
    }
    self->ntouched = 0;
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(total);
}

static PyMethodDef fastpath_methods[] = {
    {"resolve_counted", (PyCFunction)(void (*)(void))fastpath_resolve_counted, METH_FASTCALL,
     resolve_counted_doc},
    {"start_counting", (PyCFunction)fastpath_start_counting, METH_NOARGS, start_counting_doc},
    {"drain_into", (PyCFunction)(void (*)(void))fastpath_drain_into, METH_FASTCALL,
     drain_into_doc},
    {"resolve", (PyCFunction)(void (*)(void))fastpath_resolve, METH_FASTCALL, resolve_doc},
    {"resolve_path", (PyCFunction)(void (*)(void))fastpath_resolve_path, METH_FASTCALL,
     resolve_path_doc},
    {"resolve_rules", (PyCFunction)(void (*)(void))fastpath_resolve_rules, METH_FASTCALL,
     resolve_rules_doc},
    {NULL, NULL, 0, NULL},
};

static PyObject *
fastpath_nbytes(FastPath *self, void *closure)
{
    size_t n = self->pool_len + (size_t)self->nnodes * sizeof(Node) +
               (size_t)self->nalts * sizeof(Alt) + (size_t)self->nslots * sizeof(Slot) +
               (size_t)self->nsegs * sizeof(Seg) + (size_t)self->nrules * sizeof(Rule) +
               (size_t)self->nints * 4 + (size_t)self->nstrs * sizeof(Str);
    return PyLong_FromSize_t(n);
}

static PyGetSetDef fastpath_getset[] = {
    {"nbytes", (getter)fastpath_nbytes, NULL, "Bytes held outside Python objects.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(fastpath_doc,
"FastPath(decision, no_match, table, store, prefixes, metas, rules_of, options, nodes, rules,\n"
"         patterns)\n\n"
"The compiled road of Engine.resolve(); waypost.engine._compiled builds it from a rule set.");

static PyTypeObject FastPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "waypost._plainstore.FastPath",
    .tp_basicsize = sizeof(FastPath),
    .tp_dealloc = (destructor)fastpath_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = fastpath_doc,
    .tp_methods = fastpath_methods,
    .tp_getset = fastpath_getset,
    .tp_new = fastpath_new,
};

/* -- Engine.resolve ------------------------------------------------------------------------ */

/* Engine.resolve as the class holds it when the compiled store is built: a method descriptor
 * (Py_TPFLAGS_METHOD_DESCRIPTOR: a call engine.resolve(...) binds nothing) that reads the
 * engine's snapshot and its compiled road from their slots and asks it first, and otherwise
 * calls the Python function it wraps, the reference road, with the same arguments. It saves a
 * Python frame on every request the compiled road answers. */
typedef struct {
    PyObject_HEAD
    PyObject *func;
    PyTypeObject *engine_type;
    PyTypeObject *snapshot_type;
    Py_ssize_t snapshot_offset; /* Engine._snapshot */
    Py_ssize_t fast_offset;     /* _Snapshot.fast (or, counting, _Snapshot.counted) */
    int counting; /* Engine.resolve_counted(request, record, stage): the hit counted by the road */
    vectorcallfunc vectorcall;
} FastMethod;

static PyObject *S_STAGE, *S_URL, *S_HEADERS, *S_CLIENT_IP, *S_NOW;

static Py_ssize_t
slot_offset(PyObject *descr, const char *what)
{
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "%s must be a slot", what);
        return -1;
    }
    return ((PyMemberDescrObject *)descr)->d_member->offset;
}

/* Engine.resolve(request, url, headers, client_ip, now, stage) on the road `fp`: a decision,
 * None (not answered: the Python function answers), or NULL (an error). */
static PyObject *
resolve_call(FastPath *fp, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 2 || nargs > 7) Py_RETURN_NONE;
    PyObject *url = nargs > 2 ? args[2] : Py_None;
    PyObject *stage = nargs > 6 ? args[6] : S_ALL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        if (name == S_STAGE) stage = args[nargs + k];
        else if (name == S_URL) url = args[nargs + k];
        else if (name != S_HEADERS && name != S_CLIENT_IP && name != S_NOW) Py_RETURN_NONE;
    }
    return resolve_parts(fp, args[1], url, stage);
}

/* Engine.resolve_counted(request, record, stage="all") on the counting road `fp`, the hit
 * counted: as resolve_call() (the Python function then answers and records the hit). */
static PyObject *
counted_call(FastPath *fp, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 3 || nargs > 4) Py_RETURN_NONE;
    PyObject *stage = nargs > 3 ? args[3] : S_ALL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        if (PyTuple_GET_ITEM(kwnames, k) != S_STAGE) Py_RETURN_NONE;
        stage = args[nargs + k];
    }
    PyObject *out = resolve_parts(fp, args[1], Py_None, stage);
    if (out != NULL && out != Py_None && fp->last >= 0) count_hit(fp, (uint32_t)fp->last);
    return out;
}

static PyObject *
fastmethod_vectorcall(FastMethod *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    /* The engine's road, read from its snapshot's slot */
    PyObject *snapshot = nargs >= 1 && PyObject_TypeCheck(args[0], self->engine_type)
                             ? *(PyObject **)((char *)args[0] + self->snapshot_offset)
                             : NULL;
    PyObject *fast = snapshot != NULL && Py_IS_TYPE(snapshot, self->snapshot_type)
                         ? *(PyObject **)((char *)snapshot + self->fast_offset)
                         : NULL;
    if (fast != NULL && Py_IS_TYPE(fast, &FastPathType)) {
        /* Held while it answers: reading request.path may run Python code, during which
         * another thread may swap the engine's snapshot and free this one. */
        Py_INCREF(fast);
        PyObject *out = self->counting ? counted_call((FastPath *)fast, args, nargs, kwnames)
                                       : resolve_call((FastPath *)fast, args, nargs, kwnames);
        Py_DECREF(fast);
        if (out != Py_None) return out; /* a decision, or NULL: an error */
        Py_DECREF(out);
    }
    return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
}

static PyObject *
fastmethod_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"", "", "", "", "", "counting", NULL};
    PyObject *func, *engine_type, *snapshot_type, *snapshot_descr, *fast_descr;
    int counting = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!O!OO|$p:FastMethod", names, &func,
                                     &PyType_Type, &engine_type, &PyType_Type, &snapshot_type,
                                     &snapshot_descr, &fast_descr, &counting))
        return NULL;
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "the function must be callable");
        return NULL;
    }
    Py_ssize_t snapshot_offset = slot_offset(snapshot_descr, "Engine._snapshot");
    if (snapshot_offset < 0) return NULL;
    Py_ssize_t fast_offset = slot_offset(fast_descr, "_Snapshot.fast");
    if (fast_offset < 0) return NULL;
    FastMethod *self = (FastMethod *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->func = Py_NewRef(func);
    self->engine_type = (PyTypeObject *)Py_NewRef(engine_type);
    self->snapshot_type = (PyTypeObject *)Py_NewRef(snapshot_type);
    self->snapshot_offset = snapshot_offset;
    self->fast_offset = fast_offset;
    self->counting = counting;
    self->vectorcall = (vectorcallfunc)fastmethod_vectorcall;
    return (PyObject *)self;
}

static void
fastmethod_dealloc(FastMethod *self)
{
    Py_XDECREF(self->func);
    Py_XDECREF(self->engine_type);
    Py_XDECREF(self->snapshot_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
fastmethod_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyObject *
fastmethod_wrapped(FastMethod *self, void *closure)
{
    return Py_NewRef(self->func);
}

static PyObject *
fastmethod_attr(FastMethod *self, void *closure)
{
    return PyObject_GetAttrString(self->func, (const char *)closure);
}

static PyGetSetDef fastmethod_getset[] = {
    {"__wrapped__", (getter)fastmethod_wrapped, NULL, "The Python function (the reference).",
     NULL},
    {"__doc__", (getter)fastmethod_attr, NULL, NULL, "__doc__"},
    {"__name__", (getter)fastmethod_attr, NULL, NULL, "__name__"},
    {"__qualname__", (getter)fastmethod_attr, NULL, NULL, "__qualname__"},
    {"__module__", (getter)fastmethod_attr, NULL, NULL, "__module__"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FastMethodType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "waypost._plainstore.FastMethod",
    .tp_basicsize = sizeof(FastMethod),
    .tp_dealloc = (destructor)fastmethod_dealloc,
    .tp_vectorcall_offset = offsetof(FastMethod, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "FastMethod(function, Engine, _Snapshot, Engine._snapshot, _Snapshot.fast)\n"
              "FastMethod(function, Engine, _Snapshot, Engine._snapshot, _Snapshot.counted, "
              "counting=True)\n\n"
              "Engine.resolve (Engine.resolve_counted) with the compiled (counting) road asked "
              "first (see _fastpath.c).",
    .tp_getset = fastmethod_getset,
    .tp_descr_get = fastmethod_get,
    .tp_new = fastmethod_new,
};

int
fastpath_add_type(PyObject *module)
{
    S_STAGE = PyUnicode_InternFromString("stage");
    S_URL = PyUnicode_InternFromString("url");
    S_HEADERS = PyUnicode_InternFromString("headers");
    S_CLIENT_IP = PyUnicode_InternFromString("client_ip");
    S_NOW = PyUnicode_InternFromString("now");
    if (!S_STAGE || !S_URL || !S_HEADERS || !S_CLIENT_IP || !S_NOW) return -1;
    if (PyModule_AddType(module, &FastMethodType) < 0) return -1;
    S_REDIRECT = PyUnicode_InternFromString("redirect");
    S_REWRITE = PyUnicode_InternFromString("rewrite");
    S_RESPOND = PyUnicode_InternFromString("respond");
    S_PASS = PyUnicode_InternFromString("pass");
    S_ALL = PyUnicode_InternFromString("all");
    S_BEFORE = PyUnicode_InternFromString("before");
    S_MISSING = PyUnicode_InternFromString("missing");
    S_PATH = PyUnicode_InternFromString("path");
    S_QUERY_STRING = PyUnicode_InternFromString("query_string");
    if (!S_REDIRECT || !S_REWRITE || !S_RESPOND || !S_PASS || !S_ALL || !S_BEFORE ||
        !S_MISSING || !S_PATH || !S_QUERY_STRING)
        return -1;
    return PyModule_AddType(module, &FastPathType);
}
