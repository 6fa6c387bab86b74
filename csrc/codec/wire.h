/* wire: explains why protobuf-c refused a message.
 *
 * protobuf-c's unpack only says "no". When it does, this walks the same bytes
 * with the message's descriptors and reports the first wire-level fault with
 * its byte offset and field path (e.g. Profile.sample[12].location_id), so
 * the user learns what is broken. It runs only on failure: no cost otherwise.
 * Not signal-safe; no GIL needed.
 */
#ifndef CPROF_WIRE_H
#define CPROF_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "common/errors.h"

/* Fill err with the first fault found in data as a message of type desc and
 * return CPROF_E_FORMAT; when no fault is found (the failure was something
 * else, such as memory) the message says so. */
int cprof_wire_explain(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                       size_t n, cprof_error_t *err);

#endif
