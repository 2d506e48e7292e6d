/* store_registry.c - built-in stores by name. */
#include <string.h>

#include "persistence/store.h"

const nv_store_ops *
nv__store_find(const char *name)
{
	static const nv_store_ops *const builtin[] = {
		&nv__file_store_ops,
		&nv__sqlite_store_ops,
	};
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (strcmp(builtin[i]->name, name) == 0)
			return builtin[i];
	return NULL;
}
