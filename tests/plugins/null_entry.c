/* Proves the loader refuses a plugin whose entry returns NULL. */
#include <voxray/plugin.h>

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return NULL;
}
