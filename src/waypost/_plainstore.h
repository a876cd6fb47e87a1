/* What the compiled store (_plainstore.c) shares with the compiled resolve (_fastpath.c). */
#ifndef WAYPOST_PLAINSTORE_H
#define WAYPOST_PLAINSTORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HEAD 10
#define DUP 0x80000000u
#define NO_RECORD 0xFFFFFFFFu
#define MAX_TOTAL 0xFFFFFFF0u

typedef struct {
    PyObject_HEAD
    char *blob;
    size_t size;
    size_t cap;
    Py_hash_t *hashes; /* while building: the hash of each record's path, in add() order */
    Py_ssize_t count;
    Py_ssize_t hcap;
    uint32_t *by_index;
    size_t nindex;
    uint32_t *dir; /* once frozen: buckets + 1 offsets */
    uint64_t mask;
    PyObject *duplicates; /* once frozen: list of (first index, duplicate index) */
    PyObject *metas;      /* tuple */
    int frozen;
    int per_bucket;
} PlainStore;

typedef struct {
    uint16_t klen;
    uint16_t tlen;
    uint32_t index;
    uint16_t meta;
} Head;

static inline void
read_head(const char *r, Head *h)
{
    memcpy(&h->klen, r, 2);
    memcpy(&h->tlen, r + 2, 2);
    memcpy(&h->index, r + 4, 4);
    memcpy(&h->meta, r + 8, 2);
}

static inline void
write_head(char *r, const Head *h)
{
    memcpy(r, &h->klen, 2);
    memcpy(r + 2, &h->tlen, 2);
    memcpy(r + 4, &h->index, 4);
    memcpy(r + 8, &h->meta, 2);
}

/* The record whose path is `path` (not a duplicate), or NULL with no exception set. */
const char *find_record(PlainStore *self, PyObject *path);

extern PyTypeObject PlainStoreType;

/* Adds the FastPath type (_fastpath.c) to the module. */
int fastpath_add_type(PyObject *module);

#endif
