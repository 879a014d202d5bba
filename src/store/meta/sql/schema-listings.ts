/** The console lists' table (migration 0016-console-lists, docs/metadata-schema.md). */
export interface ListingsSchema {
  image_sizes: { repository_id: number; digest: string; size_bytes: number };
}
