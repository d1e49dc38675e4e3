/* filters._native: the normaliser, the Aho-Corasick automata and the policy fused in one pass.
 *
 * The same contract as the pure-Python path in filters/core.py (which stays the reference:
 * tests/filters/test_native.py compares the two on random and adversarial text):
 *
 *   s  = text translated by normalize.table() (noise gone), plane-14 tags dropped, and a
 *        "." for each dot standing right between two digits (a decimal point)
 *   F  = s with runs of one non-ASCII character collapsed: the keys with an ASCII
 *        letter/digit are searched here
 *   D  = s without ASCII letters, digits and decimal points, runs collapsed: the other keys
 *
 * Matcher.check(text) walks the text once, feeds both streams into their automata as it goes
 * and returns None at the end if no automaton reported anything: the common, clean case
 * allocates nothing. Otherwise a second pass records, for every stream position, the original
 * index of its first and last character and its run length, and applies the policy (allow
 * words, doubled entries, ASCII word boundaries) exactly as core.py does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_LIMIT 0x30000
#define M_DELETED 0xFFFFFFFFu
#define M_MULTI 0x80000000u
#define FL_INVISIBLE 1
#define FL_FIRST_ALNUM 2
#define FL_LAST_ALNUM 4
#define FL_DOT 8          /* a full stop (kept as "." right between two digits) */
#define FL_FIRST_DIGIT 16
#define FL_LAST_DIGIT 32
#define FL_DIGIT 64       /* skeleton text is one ASCII digit */
#define MAX_AUT 8
#define NPAGES (0x110000 >> 8)
#define TRIES 2048


/* ---- the translate table (set once per process from normalize.table()) ------------------ */

static uint32_t *g_map;       /* code point -> output code point, M_DELETED, or M_MULTI|index */
static uint8_t *g_flags;      /* FL_* per code point below TABLE_LIMIT */
static uint32_t *g_multi;     /* concatenated outputs of the characters with several */
static uint32_t *g_multi_off; /* start of output k in g_multi; k+1 ends it */

static inline int is_alnum(uint32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static inline int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

static PyObject *set_table(PyObject *self, PyObject *args) {
    PyObject *table;
    Py_buffer inv;
    if (!PyArg_ParseTuple(args, "O!y*", &PyList_Type, &table, &inv)) return NULL;
    if (PyList_GET_SIZE(table) != TABLE_LIMIT || inv.len != TABLE_LIMIT) {
        PyBuffer_Release(&inv);
        PyErr_SetString(PyExc_ValueError, "table and flags must cover TABLE_LIMIT code points");
        return NULL;
    }
    uint32_t *map = PyMem_RawMalloc(sizeof(uint32_t) * TABLE_LIMIT);
    uint8_t *flags = PyMem_RawMalloc(TABLE_LIMIT);
    Py_ssize_t nmulti = 0, multi_chars = 0;
    for (Py_ssize_t cp = 0; cp < TABLE_LIMIT; cp++) {
        PyObject *s = PyList_GET_ITEM(table, cp);
        if (!PyUnicode_Check(s)) {
            PyMem_RawFree(map);
            PyMem_RawFree(flags);
            PyBuffer_Release(&inv);
            PyErr_SetString(PyExc_TypeError, "table items must be str");
            return NULL;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        if (n > 1) {
            nmulti++;
            multi_chars += n;
        }
    }
    uint32_t *multi = PyMem_RawMalloc(sizeof(uint32_t) * (multi_chars + 1));
    uint32_t *off = PyMem_RawMalloc(sizeof(uint32_t) * (nmulti + 1));
    if (!map || !flags || !multi || !off) {
        PyMem_RawFree(map);
        PyMem_RawFree(flags);
        PyMem_RawFree(multi);
        PyMem_RawFree(off);
        PyBuffer_Release(&inv);
        return PyErr_NoMemory();
    }
    Py_ssize_t k = 0, pos = 0;
    const uint8_t *invb = inv.buf;
    for (Py_ssize_t cp = 0; cp < TABLE_LIMIT; cp++) {
        PyObject *s = PyList_GET_ITEM(table, cp);
        Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        uint8_t fl = (invb[cp] & 1 ? FL_INVISIBLE : 0) | (invb[cp] & 2 ? FL_DOT : 0);
        if (n == 0) {
            map[cp] = M_DELETED;
        } else {
            uint32_t first = PyUnicode_READ_CHAR(s, 0), last = PyUnicode_READ_CHAR(s, n - 1);
            if (is_alnum(first)) fl |= FL_FIRST_ALNUM;
            if (is_alnum(last)) fl |= FL_LAST_ALNUM;
            if (is_digit(first)) fl |= FL_FIRST_DIGIT;
            if (is_digit(last)) fl |= FL_LAST_DIGIT;
            if (n == 1 && is_digit(first)) fl |= FL_DIGIT;
            if (n == 1) {
                map[cp] = first;
            } else {
                off[k] = (uint32_t)pos;
                for (Py_ssize_t j = 0; j < n; j++) multi[pos++] = PyUnicode_READ_CHAR(s, j);
                map[cp] = M_MULTI | (uint32_t)k;
                k++;
            }
        }
        flags[cp] = fl;
    }
    off[k] = (uint32_t)pos;
    PyBuffer_Release(&inv);
    /* Replaced tables are leaked on purpose: a Matcher running in another thread may still
     * read the old ones (set_table is called once per process in practice). */
    g_map = map;
    g_flags = flags;
    g_multi = multi;
    g_multi_off = off;
    Py_RETURN_NONE;
}

static inline uint8_t flags_of(uint32_t cp) {
    if (cp < TABLE_LIMIT) return g_flags[cp];
    return (cp >= 0xE0000 && cp <= 0xE0FFF) ? FL_INVISIBLE : 0;
}

/* ---- Aho-Corasick automaton over code points --------------------------------------------- */

/* A double-array trie: the child of slot s by symbol c is slot base[s] + c if check[] of that
 * slot is s. One probe per try and the four per-slot fields on one cache line keep a step at
 * a few nanoseconds even on a 46k-key automaton (a sorted-children search was 3x slower).
 * A state whose children find no hole after TRIES candidate bases goes past the highest slot
 * in use, while the array stays within 2x the states; past that (wide, dense symbol sets:
 * adversarial lists) it keeps its children sorted in a side table instead (base < 0), so
 * memory stays proportional to the number of edges whatever the list. */
typedef struct {
    int32_t base, check, fail, emit; /* emit: first slot of the output chain, or -1 */
} slot_t;

typedef struct {
    PyObject_HEAD
    PyObject *keys;       /* tuple of str */
    Py_ssize_t nkeys;
    int32_t *keylen;
    int32_t maxlen;       /* the longest key */
    uint32_t **pages;     /* NPAGES pointers to 256 symbols each (or NULL) */
    uint32_t nsyms;       /* symbols are 1..nsyms; 0 = in no key */
    int32_t nslots;
    int32_t nstates;
    slot_t *slot;
    int32_t nsparse;      /* sparse states: children in sp_sym/sp_to[sp_off[j] .. sp_off[j+1]) */
    int32_t *sp_off, *sp_to;
    uint32_t *sp_sym;
    int32_t *out;         /* key index ending at this slot, or -1 */
    int32_t *dict;        /* next slot with an output on the failure chain, or -1 */
} Automaton;

static inline uint32_t sym_of(const Automaton *A, uint32_t cp) {
    const uint32_t *page = A->pages[cp >> 8];
    return page ? page[cp & 0xFF] : 0;
}

static int32_t goto_sparse(const Automaton *A, int32_t j, uint32_t sym) {
    int32_t lo = A->sp_off[j], hi = A->sp_off[j + 1];
    while (lo < hi) {
        int32_t mid = (lo + hi) >> 1;
        uint32_t v = A->sp_sym[mid];
        if (v == sym) return A->sp_to[mid];
        if (v < sym) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static inline int32_t goto_of(const Automaton *A, int32_t s, uint32_t sym) {
    int32_t b = A->slot[s].base;
    if (b < 0) return goto_sparse(A, -b - 1, sym);
    int64_t t = (int64_t)b + sym;
    if (t < A->nslots && A->slot[t].check == s) return (int32_t)t;
    return -1;
}

static inline __attribute__((always_inline)) int32_t ac_step(const Automaton *A, int32_t s,
                                                              uint32_t cp) {
    uint32_t sym = sym_of(A, cp);
    if (!sym) return 0;
    for (;;) {
        int32_t t = goto_of(A, s, sym);
        if (t >= 0) return t;
        if (s == 0) return 0;
        s = A->slot[s].fail;
    }
}

static void automaton_free_arrays(Automaton *A) {
    if (A->pages) {
        for (Py_ssize_t p = 0; p < NPAGES; p++) PyMem_RawFree(A->pages[p]);
        PyMem_RawFree(A->pages);
    }
    PyMem_RawFree(A->keylen);
    PyMem_RawFree(A->slot);
    PyMem_RawFree(A->sp_off);
    PyMem_RawFree(A->sp_to);
    PyMem_RawFree(A->sp_sym);
    A->sp_off = A->sp_to = NULL;
    A->sp_sym = NULL;
    A->nsparse = 0;
    PyMem_RawFree(A->out);
    PyMem_RawFree(A->dict);
    A->pages = NULL;
    A->keylen = A->out = A->dict = NULL;
    A->slot = NULL;
    A->nslots = 0;
}

static void Automaton_dealloc(Automaton *A) {
    automaton_free_arrays(A);
    Py_XDECREF(A->keys);
    Py_TYPE(A)->tp_free((PyObject *)A);
}

static int u32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Build-time trie: children as linked lists. */
typedef struct {
    int32_t *first, *next, *key;
    uint32_t *sym;
    int32_t n, cap;
} trie_t;

static int trie_grow(trie_t *t) {
    int32_t cap = t->cap ? t->cap * 2 : 1024;
    int32_t *f = PyMem_RawRealloc(t->first, sizeof(int32_t) * cap);
    if (!f) return -1;
    t->first = f;
    int32_t *nx = PyMem_RawRealloc(t->next, sizeof(int32_t) * cap);
    if (!nx) return -1;
    t->next = nx;
    int32_t *k = PyMem_RawRealloc(t->key, sizeof(int32_t) * cap);
    if (!k) return -1;
    t->key = k;
    uint32_t *sy = PyMem_RawRealloc(t->sym, sizeof(uint32_t) * cap);
    if (!sy) return -1;
    t->sym = sy;
    t->cap = cap;
    return 0;
}

static void trie_free(trie_t *t) {
    PyMem_RawFree(t->first);
    PyMem_RawFree(t->next);
    PyMem_RawFree(t->key);
    PyMem_RawFree(t->sym);
}

/* Slots grow on demand; a new slot is free (check = -2: no state has that number). */
static int ensure_slots(Automaton *A, int64_t need) {
    if (need <= A->nslots) return 0;
    if (need > INT32_MAX / 2) return -1;
    int64_t cap = A->nslots ? A->nslots : 1024;
    while (cap < need) cap *= 2;
    slot_t *s2 = PyMem_RawRealloc(A->slot, sizeof(slot_t) * cap);
    if (!s2) return -1;
    for (int64_t j = A->nslots; j < cap; j++) {
        s2[j].base = 0;
        s2[j].check = -2;
        s2[j].fail = 0;
        s2[j].emit = -1;
    }
    A->slot = s2;
    A->nslots = (int32_t)cap;
    return 0;
}

static int automaton_build(Automaton *A, trie_t *t) {
    PyObject *keys = A->keys;
    Py_ssize_t nk = A->nkeys;
    if (trie_grow(t) < 0) return -1;
    t->first[0] = -1;
    t->next[0] = -1;
    t->key[0] = -1;
    t->sym[0] = 0;
    t->n = 1;
    for (Py_ssize_t k = 0; k < nk; k++) {
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        Py_ssize_t n = PyUnicode_GET_LENGTH(key);
        int32_t s = 0;
        for (Py_ssize_t j = 0; j < n; j++) {
            uint32_t sym = sym_of(A, PyUnicode_READ_CHAR(key, j));
            int32_t c = t->first[s];
            while (c >= 0 && t->sym[c] != sym) c = t->next[c];
            if (c < 0) {
                if (t->n >= INT32_MAX / 4) return -1;
                if (t->n == t->cap && trie_grow(t) < 0) return -1;
                c = t->n++;
                t->first[c] = -1;
                t->key[c] = -1;
                t->sym[c] = sym;
                t->next[c] = t->first[s];
                t->first[s] = c;
            }
            s = c;
        }
        if (t->key[s] >= 0) {
            PyErr_Format(PyExc_ValueError, "duplicate key %R", key);
            return -2;
        }
        t->key[s] = (int32_t)k;
    }
    int32_t nn = t->n;
    A->nstates = nn;
    int32_t *queue = PyMem_RawMalloc(sizeof(int32_t) * nn);
    int32_t *slot_of = PyMem_RawMalloc(sizeof(int32_t) * nn);
    uint32_t *syms = PyMem_RawMalloc(sizeof(uint32_t) * (A->nsyms + 1));
    int rc = -1;
    if (!queue || !slot_of || !syms || ensure_slots(A, (int64_t)nn + A->nsyms + 2) < 0)
        goto done;
    /* Place the states breadth first: a parent's slot is known before its children. */
    int32_t qh = 0, qt = 0;
    queue[qt++] = 0;
    slot_of[0] = 0;
    A->slot[0].check = -1;
    int64_t first_free = 1, hi = 1; /* hi: one past the highest slot in use */
    /* Slots the array may grow to by placing states past hi; beyond it they go sparse. */
    int64_t budget = 2 * ((int64_t)nn + A->nsyms + 1024);
    while (qh < qt) {
        int32_t u = queue[qh++];
        int32_t m = 0;
        for (int32_t v = t->first[u]; v >= 0; v = t->next[v]) syms[m++] = t->sym[v];
        if (!m) continue;
        if (m > 1) qsort(syms, m, sizeof(uint32_t), u32_cmp);
        while (first_free < A->nslots && A->slot[first_free].check != -2) first_free++;
        int64_t p = first_free > (int64_t)syms[0] ? first_free : (int64_t)syms[0];
        int placed = 0;
        for (int tries = 0; tries < TRIES; tries++, p++) {
            if (ensure_slots(A, p - syms[0] + syms[m - 1] + 1) < 0) goto done;
            if (A->slot[p].check != -2) continue;
            int64_t b = p - syms[0];
            int ok = 1;
            for (int32_t j = 1; j < m && ok; j++)
                if (A->slot[b + syms[j]].check != -2) ok = 0;
            if (ok) {
                placed = 1;
                break;
            }
        }
        if (!placed && hi + (int64_t)(syms[m - 1] - syms[0]) < budget) {
            /* No hole fits: past the highest slot in use, while memory stays within budget. */
            p = (hi > (int64_t)syms[0] ? hi : (int64_t)syms[0]);
            if (ensure_slots(A, p - syms[0] + syms[m - 1] + 1) < 0) goto done;
            placed = 1;
        }
        int32_t su = slot_of[u];
        if (placed) {
            int32_t b = (int32_t)(p - syms[0]);
            A->slot[su].base = b;
            for (int32_t v = t->first[u]; v >= 0; v = t->next[v]) {
                int32_t sv = b + (int32_t)t->sym[v];
                A->slot[sv].check = su;
                if (sv >= hi) hi = (int64_t)sv + 1;
                slot_of[v] = sv;
                queue[qt++] = v;
            }
            continue;
        }
        /* Sparse: the children take fresh slots at the end, listed sorted by symbol. */
        if (ensure_slots(A, hi + m) < 0) goto done;
        int32_t j = A->nsparse;
        int32_t start = j ? A->sp_off[j] : 0;
        int32_t *o2 = PyMem_RawRealloc(A->sp_off, sizeof(int32_t) * (j + 2));
        if (!o2) goto done;
        A->sp_off = o2;
        int32_t *t2 = PyMem_RawRealloc(A->sp_to, sizeof(int32_t) * (start + m));
        if (!t2) goto done;
        A->sp_to = t2;
        uint32_t *y2 = PyMem_RawRealloc(A->sp_sym, sizeof(uint32_t) * (start + m));
        if (!y2) goto done;
        A->sp_sym = y2;
        A->sp_off[j] = start;
        A->sp_off[j + 1] = start + m;
        A->nsparse = j + 1;
        A->slot[su].base = -j - 1;
        for (int32_t k = 0; k < m; k++) A->sp_sym[start + k] = syms[k];
        for (int32_t v = t->first[u]; v >= 0; v = t->next[v]) {
            int32_t sv = (int32_t)hi++;
            A->slot[sv].check = su;
            slot_of[v] = sv;
            queue[qt++] = v;
            /* sorted position of this child's symbol */
            uint32_t *pos = bsearch(&t->sym[v], syms, m, sizeof(uint32_t), u32_cmp);
            A->sp_to[start + (pos - syms)] = sv;
        }
    }
    if (hi < A->nslots) { /* give back the doubling slack */
        slot_t *s2 = PyMem_RawRealloc(A->slot, sizeof(slot_t) * hi);
        if (s2) {
            A->slot = s2;
            A->nslots = (int32_t)hi;
        }
    }
    int32_t ns = A->nslots;
    A->out = PyMem_RawMalloc(sizeof(int32_t) * ns);
    A->dict = PyMem_RawMalloc(sizeof(int32_t) * ns);
    if (!A->out || !A->dict) goto done;
    for (int32_t j = 0; j < ns; j++) {
        A->out[j] = -1;
        A->dict[j] = -1;
    }
    for (int32_t u = 0; u < nn; u++) A->out[slot_of[u]] = t->key[u];
    /* Failure and dictionary links, breadth first (a failure target is shallower). */
    for (qh = 0; qh < qt; qh++) {
        int32_t u = queue[qh], su = slot_of[u];
        int32_t f = A->slot[su].fail;
        if (u) {
            A->dict[su] = A->out[f] >= 0 ? f : A->dict[f];
            A->slot[su].emit = A->out[su] >= 0 ? su : A->dict[su];
        }
        for (int32_t v = t->first[u]; v >= 0; v = t->next[v]) {
            int32_t sv = slot_of[v], to = 0;
            if (u) {
                int32_t s = f;
                for (;;) {
                    int32_t g = goto_of(A, s, t->sym[v]);
                    if (g >= 0) {
                        to = g;
                        break;
                    }
                    if (s == 0) break;
                    s = A->slot[s].fail;
                }
            }
            A->slot[sv].fail = to;
        }
    }
    rc = 0;
done:
    PyMem_RawFree(queue);
    PyMem_RawFree(slot_of);
    PyMem_RawFree(syms);
    return rc;
}

typedef struct {
    uint32_t cp, count;
} freq_t;

static int freq_cmp(const void *a, const void *b) {
    const freq_t *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->cp > y->cp) - (x->cp < y->cp);
}

static int Automaton_init(Automaton *A, PyObject *args, PyObject *kw) {
    PyObject *seq;
    static char *kwlist[] = {"keys", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &seq)) return -1;
    PyObject *keys = PySequence_Tuple(seq);
    if (!keys) return -1;
    automaton_free_arrays(A);
    Py_XSETREF(A->keys, keys);
    Py_ssize_t nk = PyTuple_GET_SIZE(keys);
    A->nkeys = nk;
    A->nsyms = 0;
    A->nstates = 0;
    A->maxlen = 0;
    for (Py_ssize_t k = 0; k < nk; k++) {
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        if (!PyUnicode_Check(key) || PyUnicode_GET_LENGTH(key) == 0 ||
            PyUnicode_GET_LENGTH(key) > 100000) {
            PyErr_SetString(PyExc_ValueError, "keys must be non-empty str");
            return -1;
        }
    }
    if (nk > 50000000) {
        PyErr_SetString(PyExc_ValueError, "too many keys");
        return -1;
    }
    A->keylen = PyMem_RawMalloc(sizeof(int32_t) * (nk + 1));
    A->pages = PyMem_RawCalloc(NPAGES, sizeof(uint32_t *));
    if (!A->keylen || !A->pages) goto nomem;
    /* Count each character's uses, then number the symbols most used first: the children
     * of a busy state are mostly common characters, so their symbols sit close together
     * and the state finds room in the double array (otherwise it goes sparse: slower). */
    for (Py_ssize_t k = 0; k < nk; k++) {
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        Py_ssize_t n = PyUnicode_GET_LENGTH(key);
        A->keylen[k] = (int32_t)n;
        if (n > A->maxlen) A->maxlen = (int32_t)n;
        for (Py_ssize_t j = 0; j < n; j++) {
            uint32_t cp = PyUnicode_READ_CHAR(key, j);
            uint32_t **pg = &A->pages[cp >> 8];
            if (!*pg && !(*pg = PyMem_RawCalloc(256, sizeof(uint32_t)))) goto nomem;
            if (!(*pg)[cp & 0xFF]++) A->nsyms++;
        }
    }
    if (A->nsyms) {
        freq_t *fr = PyMem_RawMalloc(sizeof(freq_t) * A->nsyms);
        if (!fr) goto nomem;
        uint32_t m = 0;
        for (uint32_t p = 0; p < NPAGES; p++) {
            if (!A->pages[p]) continue;
            for (uint32_t j = 0; j < 256; j++)
                if (A->pages[p][j]) {
                    fr[m].cp = (p << 8) | j;
                    fr[m].count = A->pages[p][j];
                    m++;
                }
        }
        qsort(fr, m, sizeof(freq_t), freq_cmp);
        for (uint32_t j = 0; j < m; j++) A->pages[fr[j].cp >> 8][fr[j].cp & 0xFF] = j + 1;
        PyMem_RawFree(fr);
    }
    trie_t t = {NULL, NULL, NULL, NULL, 0, 0};
    int r = automaton_build(A, &t);
    trie_free(&t);
    if (r == 0) return 0;
    automaton_free_arrays(A);
    if (r == -2) return -1;
    PyErr_NoMemory();
    return -1;
nomem:
    automaton_free_arrays(A);
    PyErr_NoMemory();
    return -1;
}

static inline int automaton_ready(const Automaton *A) { return A->slot != NULL; }

/* Plain overlapping search of ``text`` as given (no normalisation): the Engine protocol. */
static PyObject *Automaton_scan(Automaton *A, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "scan() expects a str");
        return NULL;
    }
    PyObject *res = PyList_New(0);
    if (!res || !automaton_ready(A)) return res;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    int32_t s = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        s = ac_step(A, s, PyUnicode_READ(kind, data, i));
        for (int32_t o = A->slot[s].emit; o >= 0; o = A->dict[o]) {
            int32_t k = A->out[o];
            PyObject *t = Py_BuildValue("(inn)", (int)k, i + 1 - A->keylen[k], i + 1);
            if (!t || PyList_Append(res, t) < 0) {
                Py_XDECREF(t);
                Py_DECREF(res);
                return NULL;
            }
            Py_DECREF(t);
        }
    }
    return res;
}

static PyObject *Automaton_any(Automaton *A, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "any() expects a str");
        return NULL;
    }
    if (!automaton_ready(A)) Py_RETURN_FALSE;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    int32_t s = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        s = ac_step(A, s, PyUnicode_READ(kind, data, i));
        if (A->slot[s].emit >= 0) Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

static PyObject *Automaton_nbytes(Automaton *A, void *closure) {
    size_t b = 0;
    if (A->pages) {
        b += NPAGES * sizeof(uint32_t *);
        for (Py_ssize_t p = 0; p < NPAGES; p++)
            if (A->pages[p]) b += 256 * sizeof(uint32_t);
    }
    if (automaton_ready(A)) {
        b += (size_t)A->nslots * (sizeof(slot_t) + 2 * sizeof(int32_t)) + A->nkeys * 4;
        if (A->nsparse) b += (size_t)A->nsparse * 4 + (size_t)A->sp_off[A->nsparse] * 8;
    }
    return PyLong_FromSize_t(b);
}

static PyObject *Automaton_stats(Automaton *A, void *closure) {
    return Py_BuildValue("{s:n,s:i,s:i,s:i,s:I}", "keys", A->nkeys, "states", (int)A->nstates,
                         "slots", (int)A->nslots, "sparse_states", (int)A->nsparse,
                         "symbols", (unsigned)A->nsyms);
}

static PyObject *Automaton_keys(Automaton *A, void *closure) {
    if (!A->keys) return PyTuple_New(0);
    Py_INCREF(A->keys);
    return A->keys;
}

static PyMethodDef Automaton_methods[] = {
    {"scan", (PyCFunction)Automaton_scan, METH_O,
     "scan(text) -> [(key_index, start, end)], overlapping, on text as given"},
    {"any", (PyCFunction)Automaton_any, METH_O, "any(text) -> bool"},
    {NULL}};

static PyGetSetDef Automaton_getset[] = {
    {"nbytes", (getter)Automaton_nbytes, NULL, "memory held by the automaton's arrays", NULL},
    {"keys", (getter)Automaton_keys, NULL, "the keys, in index order", NULL},
    {"stats", (getter)Automaton_stats, NULL, "sizes of the automaton's tables", NULL},
    {NULL}};

static PyTypeObject AutomatonType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "filters._native.Automaton",
    .tp_basicsize = sizeof(Automaton),
    .tp_dealloc = (destructor)Automaton_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Automaton(keys): Aho-Corasick over code points; keys distinct and non-empty",
    .tp_methods = Automaton_methods,
    .tp_getset = Automaton_getset,
    .tp_init = (initproc)Automaton_init,
    .tp_new = PyType_GenericNew,
};

/* ---- the fused check --------------------------------------------------------------------- */

typedef struct {
    int32_t aut;
    int32_t key;
    Py_ssize_t a, b; /* [a, b) in collapsed stream positions */
} hit_t;

#define RING 128 /* F keys up to this long may let the F stream doze (see push_f) */

typedef struct {
    int naut;
    Automaton **aut;
    int32_t st[MAX_AUT];
    uint32_t last; /* last pushed code point (collapse); 0xFFFFFFFF = none */
    Py_ssize_t pos;
    /* first pass, F stream only: dozing until the first ASCII letter/digit */
    int dozing;
    int32_t maxlen;
    uint32_t ring[RING];
    /* recording (second pass) */
    Py_ssize_t cap;
    Py_ssize_t *first, *lastix;
    Py_ssize_t *runlen;
    Py_ssize_t nh, hcap;
    hit_t *hits;
} stream_t;

static void stream_free(stream_t *S) {
    PyMem_RawFree(S->first);
    PyMem_RawFree(S->lastix);
    PyMem_RawFree(S->runlen);
    PyMem_RawFree(S->hits);
}

static int record_position(stream_t *S, Py_ssize_t i) {
    if (S->pos == S->cap) {
        Py_ssize_t cap = S->cap ? S->cap * 2 : 64;
        Py_ssize_t *f = PyMem_RawRealloc(S->first, sizeof(Py_ssize_t) * cap);
        if (!f) return -1;
        S->first = f;
        Py_ssize_t *l = PyMem_RawRealloc(S->lastix, sizeof(Py_ssize_t) * cap);
        if (!l) return -1;
        S->lastix = l;
        Py_ssize_t *r = PyMem_RawRealloc(S->runlen, sizeof(Py_ssize_t) * cap);
        if (!r) return -1;
        S->runlen = r;
        S->cap = cap;
    }
    S->first[S->pos] = i;
    S->lastix[S->pos] = i;
    S->runlen[S->pos] = 1;
    return 0;
}

static int record_hits(stream_t *S, int k, int32_t o, Py_ssize_t pos) {
    const Automaton *A = S->aut[k];
    for (; o >= 0; o = A->dict[o]) {
        if (S->nh == S->hcap) {
            Py_ssize_t cap = S->hcap ? S->hcap * 2 : 16;
            hit_t *h = PyMem_RawRealloc(S->hits, sizeof(hit_t) * cap);
            if (!h) return -1;
            S->hits = h;
            S->hcap = cap;
        }
        int32_t key = A->out[o];
        hit_t *h = &S->hits[S->nh++];
        h->aut = k;
        h->key = key;
        h->b = pos + 1;
        h->a = pos + 1 - A->keylen[key];
    }
    return 0;
}

/* Step every automaton of S with c. First pass (REC 0): 1 as soon as any reports an output.
 * Second pass: record the outputs; -1 on memory error. */
static inline __attribute__((always_inline)) int step_all(stream_t *S, uint32_t c, Py_ssize_t pos,
                                                          const int REC) {
    int found = 0;
    for (int k = 0; k < S->naut; k++) {
        const Automaton *A = S->aut[k];
        int32_t s = ac_step(A, S->st[k], c);
        S->st[k] = s;
        int32_t o = A->slot[s].emit;
        if (o < 0) continue;
        if (!REC) return 1;
        if (record_hits(S, k, o, pos) < 0) return -1;
        found = 1;
    }
    (void)found;
    return 0;
}

/* Push one skeleton character: collapse runs, step the automata. */
static inline __attribute__((always_inline)) int push(stream_t *S, uint32_t c, Py_ssize_t i,
                                                      const int REC) {
    if (c > 0x7F && c == S->last) {
        if (REC) {
            S->lastix[S->pos - 1] = i;
            S->runlen[S->pos - 1]++;
        }
        return 0;
    }
    S->last = c;
    if (REC && record_position(S, i) < 0) return -1;
    Py_ssize_t pos = S->pos++;
    return step_all(S, c, pos, REC);
}

/* The F stream in the first pass. Every F key holds an ASCII letter/digit, so before the
 * first one arrives no F key can end: the stream only keeps its last maxlen - 1 characters.
 * At the first ASCII letter/digit it wakes up and replays them (a key ending there or later
 * starts at most maxlen - 1 characters back), then runs as usual. */
static inline __attribute__((always_inline)) int push_f(stream_t *S, uint32_t c, Py_ssize_t i) {
    if (!S->dozing) return push(S, c, i, 0);
    if (c > 0x7F && c == S->last) return 0;
    S->last = c;
    if (!is_alnum(c)) {
        S->ring[S->pos % RING] = c;
        S->pos++;
        return 0;
    }
    S->dozing = 0;
    Py_ssize_t back = S->maxlen - 1;
    if (back > S->pos) back = S->pos;
    for (Py_ssize_t p = S->pos - back; p < S->pos; p++)
        if (step_all(S, S->ring[p % RING], p, 0)) return 1;
    Py_ssize_t pos = S->pos++;
    return step_all(S, c, pos, 0);
}

typedef struct {
    stream_t F, D;
} walk_t;

/* One skeleton character to both streams: F takes everything, D all but ASCII letters,
 * digits and the decimal point. */
static inline __attribute__((always_inline)) int emit(walk_t *W, uint32_t c, Py_ssize_t i,
                                                      const int REC) {
    int r;
    if (W->F.naut && (r = REC ? push(&W->F, c, i, 1) : push_f(&W->F, c, i))) return r;
    if (!is_alnum(c) && c != '.' && W->D.naut && (r = push(&W->D, c, i, REC))) return r;
    return 0;
}

static inline __attribute__((always_inline)) int walk_kind(walk_t *W, const int kind,
                                                           const void *data, Py_ssize_t n,
                                                           const int REC) {
    int r;
    const uint32_t *map = g_map;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t cp = PyUnicode_READ(kind, data, i);
        if (cp < TABLE_LIMIT) {
            uint32_t m = map[cp];
            if (m == M_DELETED) {
                /* A dot right between two digits is a decimal point (3.5), else noise. */
                if ((g_flags[cp] & FL_DOT) && i > 0 && i + 1 < n &&
                    (flags_of(PyUnicode_READ(kind, data, i - 1)) & FL_DIGIT) &&
                    (flags_of(PyUnicode_READ(kind, data, i + 1)) & FL_DIGIT) &&
                    (r = emit(W, '.', i, REC)))
                    return r;
                continue;
            }
            if (!(m & M_MULTI)) {
                if ((r = emit(W, m, i, REC))) return r;
            } else {
                uint32_t k = m & ~M_MULTI;
                for (uint32_t j = g_multi_off[k]; j < g_multi_off[k + 1]; j++)
                    if ((r = emit(W, g_multi[j], i, REC))) return r;
            }
        } else if (cp < 0xE0000 || cp > 0xE0FFF) {
            if ((r = emit(W, cp, i, REC))) return r;
        }
    }
    return 0;
}

/* One specialised loop per string kind and pass. */
static int walk(walk_t *W, PyObject *text, int record) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    switch (PyUnicode_KIND(text) | (record << 4)) {
    case PyUnicode_1BYTE_KIND: return walk_kind(W, PyUnicode_1BYTE_KIND, data, n, 0);
    case PyUnicode_2BYTE_KIND: return walk_kind(W, PyUnicode_2BYTE_KIND, data, n, 0);
    case PyUnicode_4BYTE_KIND: return walk_kind(W, PyUnicode_4BYTE_KIND, data, n, 0);
    case PyUnicode_1BYTE_KIND | 16: return walk_kind(W, PyUnicode_1BYTE_KIND, data, n, 1);
    case PyUnicode_2BYTE_KIND | 16: return walk_kind(W, PyUnicode_2BYTE_KIND, data, n, 1);
    default: return walk_kind(W, PyUnicode_4BYTE_KIND, data, n, 1);
    }
}

typedef struct {
    Py_ssize_t start, end;
    PyObject *entry; /* borrowed from the policy tuple */
    PyObject *word;
    long rank;
} match_t;

static int match_cmp(const void *x, const void *y) {
    const match_t *a = x, *b = y;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    if (a->word == b->word) return 0;
    int c = PyUnicode_Compare(a->word, b->word); /* str vs str: cannot fail */
    return c;
}


/* As verdict._boundary_before/_after: no ASCII letter/digit next to the match (invisible
 * characters skipped); for a digit edge, not "<digit>." / ".<digit>" either (1.99). */
static int boundary_before(int kind, const void *data, Py_ssize_t i, int digit) {
    Py_ssize_t j = i - 1;
    while (j >= 0 && (flags_of(PyUnicode_READ(kind, data, j)) & FL_INVISIBLE)) j--;
    if (j < 0) return 1;
    uint8_t f = flags_of(PyUnicode_READ(kind, data, j));
    if (f & FL_LAST_ALNUM) return 0;
    if (digit && (f & FL_DOT)) {
        Py_ssize_t k = j - 1;
        while (k >= 0 && (flags_of(PyUnicode_READ(kind, data, k)) & FL_INVISIBLE)) k--;
        if (k >= 0) return !(flags_of(PyUnicode_READ(kind, data, k)) & FL_LAST_DIGIT);
    }
    return 1;
}

static int boundary_after(int kind, const void *data, Py_ssize_t n, Py_ssize_t i, int digit) {
    while (i < n && (flags_of(PyUnicode_READ(kind, data, i)) & FL_INVISIBLE)) i++;
    if (i >= n) return 1;
    uint8_t f = flags_of(PyUnicode_READ(kind, data, i));
    if (f & FL_FIRST_ALNUM) return 0;
    if (digit && (f & FL_DOT)) {
        Py_ssize_t k = i + 1;
        while (k < n && (flags_of(PyUnicode_READ(kind, data, k)) & FL_INVISIBLE)) k++;
        if (k < n) return !(flags_of(PyUnicode_READ(kind, data, k)) & FL_FIRST_DIGIT);
    }
    return 1;
}

typedef struct {
    match_t *m;
    Py_ssize_t n, cap;
} matches_t;

/* The policy on one stream's hits, as core.WordFilter._gather: allow words (same stream)
 * containing a hit suppress it, doubled entries need their run lengths, keys with an ASCII
 * letter/digit at an end need a word boundary there in the original text. */
static int apply_policy(stream_t *S, PyObject *pol, PyObject *text, matches_t *M) {
    if (!S->nh) return 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject **info = PyMem_RawMalloc(sizeof(PyObject *) * S->nh);
    Py_ssize_t *allow = PyMem_RawMalloc(sizeof(Py_ssize_t) * 2 * S->nh);
    if (!info || !allow) {
        PyMem_RawFree(info);
        PyMem_RawFree(allow);
        return -1;
    }
    Py_ssize_t na = 0;
    for (Py_ssize_t h = 0; h < S->nh; h++) {
        hit_t *x = &S->hits[h];
        PyObject *key = PyTuple_GET_ITEM(S->aut[x->aut]->keys, x->key);
        PyObject *p = PyDict_GetItemWithError(pol, key);
        if (!p && PyErr_Occurred()) goto fail;
        info[h] = NULL;
        if (!p) continue; /* a removed key the shared automaton still knows */
        if (PyUnicode_Check(p)) {
            allow[2 * na] = x->a;
            allow[2 * na + 1] = x->b;
            na++;
        } else if (PyTuple_Check(p) && PyTuple_GET_SIZE(p) == 5) {
            info[h] = p;
        } else {
            PyErr_SetString(PyExc_TypeError, "bad policy item");
            goto fail;
        }
    }
    for (Py_ssize_t h = 0; h < S->nh; h++) {
        PyObject *p = info[h];
        if (!p) continue;
        hit_t *x = &S->hits[h];
        int skip = 0;
        for (Py_ssize_t j = 0; j < na && !skip; j++)
            if (allow[2 * j] <= x->a && x->b <= allow[2 * j + 1]) skip = 1;
        if (skip) continue;
        PyObject *need = PyTuple_GET_ITEM(p, 2);
        if (need != Py_None) {
            Py_ssize_t len = PyTuple_GET_SIZE(need);
            for (Py_ssize_t j = 0; j < len && !skip; j++) {
                Py_ssize_t want = PyLong_AsSsize_t(PyTuple_GET_ITEM(need, j));
                if (x->a + j >= S->pos || S->runlen[x->a + j] < want) skip = 1;
            }
            if (skip) continue;
        }
        Py_ssize_t start = S->first[x->a], end = S->lastix[x->b - 1] + 1;
        long edges = PyLong_AsLong(PyTuple_GET_ITEM(p, 3));
        if ((edges & 1) && !boundary_before(kind, data, start, (edges & 4) != 0)) continue;
        if ((edges & 2) && !boundary_after(kind, data, n, end, (edges & 8) != 0)) continue;
        if (M->n == M->cap) {
            Py_ssize_t cap = M->cap ? M->cap * 2 : 8;
            match_t *m2 = PyMem_RawRealloc(M->m, sizeof(match_t) * cap);
            if (!m2) goto fail;
            M->m = m2;
            M->cap = cap;
        }
        match_t *m = &M->m[M->n++];
        m->start = start;
        m->end = end;
        m->entry = PyTuple_GET_ITEM(p, 0);
        m->rank = PyLong_AsLong(PyTuple_GET_ITEM(p, 1));
        m->word = PyTuple_GET_ITEM(p, 4);
        if (!PyUnicode_Check(m->word)) {
            PyErr_SetString(PyExc_TypeError, "bad policy item");
            goto fail;
        }
    }
    PyMem_RawFree(info);
    PyMem_RawFree(allow);
    return 0;
fail:
    PyMem_RawFree(info);
    PyMem_RawFree(allow);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return -1;
}

typedef struct {
    PyObject_HEAD
    PyObject *fa, *da, *pol;
    int nf, nd;
    Automaton *A[2 * MAX_AUT];
} Matcher;

static void Matcher_dealloc(Matcher *M) {
    Py_XDECREF(M->fa);
    Py_XDECREF(M->da);
    Py_XDECREF(M->pol);
    Py_TYPE(M)->tp_free((PyObject *)M);
}

static int take_automata(PyObject *seq, Automaton **dst, int *n) {
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) > MAX_AUT) {
        PyErr_SetString(PyExc_TypeError, "expected a tuple of at most 8 Automaton");
        return -1;
    }
    *n = 0;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(seq); j++) {
        PyObject *a = PyTuple_GET_ITEM(seq, j);
        if (!PyObject_TypeCheck(a, &AutomatonType)) {
            PyErr_SetString(PyExc_TypeError, "expected Automaton objects");
            return -1;
        }
        if (automaton_ready((Automaton *)a) && ((Automaton *)a)->nkeys)
            dst[(*n)++] = (Automaton *)a;
    }
    return 0;
}

static int Matcher_init(Matcher *M, PyObject *args, PyObject *kw) {
    PyObject *fa, *da, *pol;
    static char *kwlist[] = {"ascii_automata", "cjk_automata", "policy", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO!", kwlist, &fa, &da, &PyDict_Type, &pol))
        return -1;
    if (!g_map) {
        PyErr_SetString(PyExc_RuntimeError, "set_table() first");
        return -1;
    }
    if (take_automata(fa, M->A, &M->nf) < 0) return -1;
    if (take_automata(da, M->A + MAX_AUT, &M->nd) < 0) return -1;
    Py_INCREF(fa);
    Py_INCREF(da);
    Py_INCREF(pol);
    Py_XSETREF(M->fa, fa);
    Py_XSETREF(M->da, da);
    Py_XSETREF(M->pol, pol);
    return 0;
}

static void walk_init(walk_t *W, Matcher *M, int record) {
    memset(W, 0, sizeof(*W));
    W->F.naut = M->nf;
    W->F.aut = M->A;
    W->D.naut = M->nd;
    W->D.aut = M->A + MAX_AUT;
    W->F.last = W->D.last = 0xFFFFFFFFu;
    int32_t maxlen = 0;
    for (int k = 0; k < M->nf; k++)
        if (M->A[k]->maxlen > maxlen) maxlen = M->A[k]->maxlen;
    W->F.maxlen = maxlen;
    W->F.dozing = !record && maxlen <= RING;
}

/* check(text) -> None (nothing listed occurs) or (matches, top): matches sorted by
 * (start, end, word), each (start, end, entry); top indexes the first of the strongest. */
static PyObject *Matcher_check(Matcher *M, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "check() expects a str");
        return NULL;
    }
    if (!M->pol) {
        PyErr_SetString(PyExc_RuntimeError, "Matcher not initialised");
        return NULL;
    }
    walk_t W;
    walk_init(&W, M, 0);
    int r = walk(&W, text, 0);
    if (r == 0) Py_RETURN_NONE;
    walk_init(&W, M, 1);
    PyObject *res = NULL;
    matches_t ms = {NULL, 0, 0};
    if (walk(&W, text, 1) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (apply_policy(&W.F, M->pol, text, &ms) < 0) goto done;
    if (apply_policy(&W.D, M->pol, text, &ms) < 0) goto done;
    if (ms.n > 1) qsort(ms.m, ms.n, sizeof(match_t), match_cmp);
    Py_ssize_t k = 0, top = 0;
    for (Py_ssize_t j = 0; j < ms.n; j++) {
        if (k && ms.m[k - 1].start == ms.m[j].start && ms.m[k - 1].end == ms.m[j].end &&
            match_cmp(&ms.m[k - 1], &ms.m[j]) == 0)
            continue;
        ms.m[k++] = ms.m[j];
    }
    PyObject *tup = PyTuple_New(k);
    if (!tup) goto done;
    for (Py_ssize_t j = 0; j < k; j++) {
        if (ms.m[j].rank > ms.m[top].rank) top = j;
        PyObject *t = Py_BuildValue("(nnO)", ms.m[j].start, ms.m[j].end, ms.m[j].entry);
        if (!t) {
            Py_DECREF(tup);
            goto done;
        }
        PyTuple_SET_ITEM(tup, j, t);
    }
    res = Py_BuildValue("(Nn)", tup, top);
done:
    stream_free(&W.F);
    stream_free(&W.D);
    PyMem_RawFree(ms.m);
    return res;
}

static PyMethodDef Matcher_methods[] = {
    {"check", (PyCFunction)Matcher_check, METH_O,
     "check(text) -> None | (((start, end, entry), ...), top)"},
    {NULL}};

static PyTypeObject MatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "filters._native.Matcher",
    .tp_basicsize = sizeof(Matcher),
    .tp_dealloc = (destructor)Matcher_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Matcher(ascii_automata, cjk_automata, policy): the fused normalise+scan+policy",
    .tp_methods = Matcher_methods,
    .tp_init = (initproc)Matcher_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef module_methods[] = {
    {"set_table", set_table, METH_VARARGS,
     "set_table(table: list[str], flags: bytes): the translate table, once per process"},
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "filters._native",
    "The fused normaliser + Aho-Corasick + policy of filters.core (see _native.c).", -1,
    module_methods};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&AutomatonType) < 0 || PyType_Ready(&MatcherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&AutomatonType);
    if (PyModule_AddObject(m, "Automaton", (PyObject *)&AutomatonType) < 0) return NULL;
    Py_INCREF(&MatcherType);
    if (PyModule_AddObject(m, "Matcher", (PyObject *)&MatcherType) < 0) return NULL;
    if (PyModule_AddIntConstant(m, "TABLE_LIMIT", TABLE_LIMIT) < 0) return NULL;
    return m;
}
