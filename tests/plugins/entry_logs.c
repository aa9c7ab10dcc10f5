/* An entry point that refuses to load and says why through
 * host->log(NULL, ...): the host's refusal line must carry that reason. */
#include <stddef.h>

#include <voxray/plugin.h>

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    if (host && host->log) {
        host->log(NULL, VX_LOG_INFO, "entry_logs: looking for the frobnicator");
        host->log(NULL, VX_LOG_WARN, "entry_logs: needs the frobnicator device, none found");
    }
    return NULL;
}
