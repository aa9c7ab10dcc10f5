voxrayincludedir = $(includedir)/voxray
voxrayinclude_HEADERS = sdk/voxray/plugin.h
EXTRA_DIST += sdk/voxray-plugin.pc.in
