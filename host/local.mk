bin_PROGRAMS += voxray
voxray_SOURCES = host/main.c
