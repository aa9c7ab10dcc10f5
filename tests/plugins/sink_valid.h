/*
 * A minimal valid sink vtable shared by the fault-injecting test plugins, so
 * that the one fault each of them carries is its only one.
 */
#ifndef TEST_PLUGINS_SINK_VALID_H
#define TEST_PLUGINS_SINK_VALID_H

#include <voxray/plugin.h>

static int accept_upload(void *inst, const vx_recording *rec, vx_error *err) {
    return VX_OK;
}

static const vx_sink_vtable valid_sink = {
    .struct_size = sizeof(vx_sink_vtable),
    .upload = accept_upload,
};

#endif
