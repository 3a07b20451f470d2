/*
 * Runs a fuzz target over files and folders of inputs, for builds without
 * libFuzzer: the checked-in corpus (seeds and every input that once
 * crashed) is replayed by the normal suite.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "enlace/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
one(const char *path, int *count)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = enl_file_read(path, 64 << 20, &buf, &len);

	if (rc != ENL_OK) {
		fprintf(stderr, "%s: %s\n", path, enl_strerror(rc));
		return 1;
	}
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	(*count)++;
	return 0;
}

int
main(int argc, char **argv)
{
	int count = 0, bad = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *dir;
		struct dirent *e;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: no such file or folder\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= one(argv[i], &count);
			continue;
		}
		if ((dir = opendir(argv[i])) == NULL)
			return 1;
		while ((e = readdir(dir)) != NULL) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			bad |= one(path, &count);
		}
		closedir(dir);
	}
	printf("replayed %d input(s)\n", count);
	return bad || count == 0;
}
