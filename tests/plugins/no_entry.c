/* Proves the loader refuses a shared object that exports no vx_plugin_entry. */
#include <voxray/plugin.h>

/* The usual mistake: an entry point under another name. */
VX_EXPORT const vx_plugin_info *vx_plugin_main(const vx_host_api *host) {
    return NULL;
}
