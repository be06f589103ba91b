package document

// MergePatch applies an RFC 7396 JSON merge patch to target and returns
// the result, leaving target as it was: a member of patch whose value is
// null removes that key, an object is merged into the object under its key
// (replacing a non-object), and any other value replaces.
func MergePatch(target, patch Object) Object {
	out := make(Object, len(target), len(target)+len(patch))
	copy(out, target)
	for _, m := range patch {
		i := -1
		for j := range out {
			if out[j].Key == m.Key {
				i = j
				break
			}
		}
		if m.Value == nil {
			if i >= 0 {
				out = append(out[:i], out[i+1:]...)
			}
			continue
		}
		v := m.Value
		if p, ok := v.(Object); ok {
			var base Object
			if i >= 0 {
				base, _ = out[i].Value.(Object)
			}
			v = MergePatch(base, p)
		}
		if i >= 0 {
			out[i].Value = v
		} else {
			out = append(out, Member{Key: m.Key, Value: v})
		}
	}
	return out
}
