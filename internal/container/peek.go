package container

// Peek is Inspect for readers that must never wait (`lkc stats`, `lkc
// top`, /metrics): it takes the shared lock when it is free and otherwise
// reads the record without it, so a container that a long command holds
// (a checkpoint, a create) shows with the status that command leaves
// ("creating" while a create runs) instead of stalling every row.
func Peek(root, id string) (*Handle, error) {
	c, err := peek(root, id)
	if err != nil {
		return nil, err
	}
	defer c.close()
	return &Handle{c: c, status: c.status()}, nil
}
