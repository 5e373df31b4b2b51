/*
 * intake_internal.h - shared by intake.c (the stages' order and the
 * commit) and intake_msg.c (the message as stages see and edit it) only.
 */
#ifndef HATO_INTAKE_INTERNAL_H
#define HATO_INTAKE_INTERNAL_H

#include <stdbool.h>

#include "intake.h"

/* Forget the last message's view, keeping the allocations. */
void intake_msg_reset(struct intake_msg *m);
/* Release what the view holds. */
void intake_msg_free(struct intake_msg *m);
/* Write the message again if the stages changed its header or body. */
bool intake_msg_apply(struct intake *in);

#endif
