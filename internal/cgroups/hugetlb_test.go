package cgroups

import "testing"

func TestReadHugetlbV1(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"hugetlb.2MB.usage_in_bytes": "4194304\n", "hugetlb.2MB.max_usage_in_bytes": "6291456\n",
		"hugetlb.2MB.failcnt": "2\n", "hugetlb.2MB.rsvd.usage_in_bytes": "999\n",
		"hugetlb.1GB.usage_in_bytes": "0\n", "hugetlb.1GB.max_usage_in_bytes": "0\n", "hugetlb.1GB.failcnt": "0\n",
	})
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	if err := readHugetlb(dir, s, false); err != nil {
		t.Fatal(err)
	}
	if got := s.Hugetlb["2MB"]; got != (Hugetlb{Usage: 4194304, Max: 6291456, Failcnt: 2}) {
		t.Errorf("2MB: %+v", got)
	}
	if _, ok := s.Hugetlb["1GB"]; !ok || len(s.Hugetlb) != 2 {
		t.Errorf("want exactly sizes 2MB and 1GB (no rsvd), got %v", s.Hugetlb)
	}
}

func TestReadHugetlbV2(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"hugetlb.2MB.current": "2097152\n", "hugetlb.2MB.events": "max 5\n",
		"hugetlb.2MB.rsvd.current": "0\n",
	})
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	if err := readHugetlb(dir, s, true); err != nil {
		t.Fatal(err)
	}
	if got := s.Hugetlb["2MB"]; got != (Hugetlb{Usage: 2097152, Failcnt: 5}) || len(s.Hugetlb) != 1 {
		t.Errorf("v2 hugetlb: %v", s.Hugetlb)
	}
}
