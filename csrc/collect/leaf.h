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
};

/* Replace the set with these n addresses and the kinds of the 256 opcodes
 * (GIL held, the sampler may be running). 0, or -1 (ENOMEM). */
int cprof_leaf_set(const uintptr_t *addresses, size_t n, const unsigned char kinds[256]);

/* Drop the set (no handler may be running: the sampler is stopped). */
void cprof_leaf_clear(void);

/* Whether the set is in use (there is a catalogue). Signal-safe. */
int cprof_leaf_active_sigsafe(void);

/* Whether address is in the set. Signal-safe. */
int cprof_leaf_known_sigsafe(uintptr_t address);

/* The kind of opcode. Signal-safe. */
int cprof_leaf_call_kind_sigsafe(unsigned opcode);

#endif
