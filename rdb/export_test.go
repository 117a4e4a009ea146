package rdb

// QuicklistContainers returns the container (1 plain, 2 packed) of every
// node of a type-18 list value and whether the node's string is
// LZF-compressed, so tests can show that their data exercises each form.
func QuicklistContainers(raw []byte) (containers []int, compressed []bool, err error) {
	r := newSliceReader(raw, 0)
	n, err := r.readCount(2, "nodes")
	if err != nil {
		return nil, nil, err
	}
	for range n {
		c, err := r.quicklistContainer()
		if err != nil {
			return nil, nil, err
		}
		containers = append(containers, int(c))
		compressed = append(compressed, r.pos < len(raw) && raw[r.pos] == 0xc0|encLZF)
		if err := r.skipString(); err != nil {
			return nil, nil, err
		}
	}
	return containers, compressed, nil
}
