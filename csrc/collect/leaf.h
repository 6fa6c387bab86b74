/* leaf: the C callables a sample can name as the function its innermost
 * Python frame is calling (time.sleep, a method descriptor, a C type).
 *
 * cprof/collect/leaf.py makes the catalogue; this keeps the addresses of its
 * objects in a lock-free set that signal handlers look up by pointer
 * equality, never reading an object through an address found in a stack:
 * an address in the set is that object, which the catalogue holds alive.
 * Also the kinds of the interpreter's call instructions, by opcode.
 */
#ifndef CPROF_LEAF_H
#define CPROF_LEAF_H

#include <stddef.h>
#include <stdint.h>

/* Call instruction kinds: where the callable lies below the stack pointer
 * the frame saves during the call (3.14+; N is the oparg). */
enum {
    CPROF_LEAF_NO_CALL = 0,
    CPROF_LEAF_CALL = 1,     /* [callable, self or NULL, args[N]]: sp - N - 2 */
    CPROF_LEAF_CALL_KW = 2,  /* the same, kwnames on top: sp - N - 3 */
    CPROF_LEAF_CALL_EX = 3,  /* [func, NULL, callargs, kwargs or NULL]: sp - 4 */
    CPROF_LEAF_EXTENDED = 4, /* EXTENDED_ARG: the high bits of the next oparg */
    CPROF_LEAF_PRECALL = 5,  /* 3.11's PRECALL: counts the arguments off before CALL */
};

/* How control leaves each opcode of a code object's co_code (3.11-3.13),
 * as dis reads it: flags, and the inline cache units after it. */
enum {
    CPROF_LEAF_JUMP_FORWARD = 1,   /* also goes to the next instruction + oparg */
    CPROF_LEAF_JUMP_BACKWARD = 2,  /* also goes to the next instruction - oparg */
    CPROF_LEAF_NO_FALLTHROUGH = 4, /* never goes on to the next instruction */
    CPROF_LEAF_RETURN_GENERATOR = 8, /* the next one starts with one value more */
};

typedef struct {
    unsigned char flags[256];
    unsigned char caches[256];
    unsigned char deopt[256]; /* the base opcode of a specialised or instrumented one */
} cprof_leaf_flow_t;

/* Keys of the set besides objects' addresses (which are 16-byte aligned):
 * a C type's address + INSTANCE_CALL names its instances' calls, a method
 * definition's (PyMethodDef) address + METHOD_DEF the builtin functions
 * and bound C methods made from it. */
#define CPROF_LEAF_INSTANCE_CALL 1
#define CPROF_LEAF_METHOD_DEF 2

/* Make the set these n addresses (a catalogue only grows: the addresses of
 * the set in use stay), with the kinds of the 256 opcodes and their flow
 * (GIL held, the sampler may be running). 0, or -1 (ENOMEM). */
int cprof_leaf_set(const uintptr_t *addresses, size_t n, const unsigned char kinds[256],
                   const cprof_leaf_flow_t *flow);

/* Drop the set and the places (no handler may be running: the sampler is
 * stopped). */
void cprof_leaf_clear(void);

/* A handler reads the set and the places only between these two: a table
 * replaced is freed once no handler is between them. Signal-safe. */
void cprof_leaf_enter_sigsafe(void);
void cprof_leaf_leave_sigsafe(void);

/* In a forked child: the other threads' handlers, cut off inside, read no
 * more. */
void cprof_leaf_after_fork_child(void);

/* What the set and the places hold: tables (the one in use and those
 * replaced but not freed yet) and their bytes. GIL held. */
typedef struct {
    size_t address_tables, address_bytes, place_tables, place_bytes, places_bytes;
} cprof_leaf_held_t;
cprof_leaf_held_t cprof_leaf_held(void);

/* Whether the set is in use (there is a catalogue). Signal-safe. */
int cprof_leaf_active_sigsafe(void);

/* Whether address is in the set. Signal-safe, between enter and leave. */
int cprof_leaf_known_sigsafe(uintptr_t address);

/* The kind of opcode. Signal-safe, between enter and leave. */
int cprof_leaf_call_kind_sigsafe(unsigned opcode);

/* --- places (3.11-3.13) ---------------------------------------------------
 * Those versions keep no stack pointer in a frame during a call, so where a
 * call instruction keeps its callable comes from the code: for each code
 * unit, (slot, other) counted from the value stack's base, the callable in
 * slot unless that holds NULL, then in other; CPROF_LEAF_NO_SLOT where the
 * unit is no call. Kept by code object address in a lock-free table that
 * handlers read: an entry is put once, with the GIL held, and forgotten as
 * its code dies, when no frame (so no handler) can be using it. */
#define CPROF_LEAF_NO_SLOT 0xFFFFu

/* The base opcode of op (specialised or instrumented), and the inline
 * cache units after a base opcode. */
int cprof_leaf_deopt(unsigned op);
int cprof_leaf_caches(unsigned op);

/* The value stack's depth before each code unit of a code object (-1 where
 * none is reached, or inside an instruction): a walk of its control flow as
 * the compiler makes it, from unit 0 and from each exception handler of its
 * exception table (co_exceptiontable's format). code: n units of opcode and
 * oparg bytes, base opcodes (as co_code gives them); effect: the stack effect of an opcode
 * (PyCompile_OpcodeStackEffectWithJump; INT_MAX for none). 0, -1 when two paths disagree or the
 * code is malformed, -2 out of memory. Needs the flow of cprof_leaf_set. */
int cprof_leaf_depths(const unsigned char *code, size_t n, const unsigned char *exceptions,
                      size_t exceptions_len, int (*effect)(int opcode, int oparg, int jump),
                      int32_t *depths);

/* The opcode of the instruction at unit i of code (n units), with its full
 * oparg (its EXTENDED_ARG units before it included) in *oparg; 0 (CACHE)
 * with oparg 0 when i is past the code. */
int cprof_leaf_instruction(const unsigned char *code, size_t n, size_t i, unsigned *oparg);

/* Keep pairs (2 x units: slot, other) for code. GIL held. 0, or -1 (ENOMEM). */
int cprof_leaf_place_put(uintptr_t code, const uint16_t *pairs, size_t units);

/* Forget code's places (it is dying). GIL held. */
void cprof_leaf_place_forget(uintptr_t code);

/* Whether code has places: 1 with *slot and *other for a call at unit lasti,
 * 0 when lasti is no call, -1 when code has none kept. Signal-safe,
 * between enter and leave. */
int cprof_leaf_place_sigsafe(uintptr_t code, int32_t lasti, unsigned *slot, unsigned *other);

#endif
