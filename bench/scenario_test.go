package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestScheduleShufflesEveryVariantIntoEveryPosition(t *testing.T) {
	const iterations, n = 400, 4
	orders := schedule(rand.New(rand.NewPCG(1, 2)), iterations, n)
	if len(orders) != iterations {
		t.Fatalf("got %d orders, want %d", len(orders), iterations)
	}
	seen := map[[2]int]int{} // (position, variant) -> count
	distinct := map[string]bool{}
	for _, order := range orders {
		sorted := slices.Sorted(slices.Values(order))
		if !slices.Equal(sorted, []int{0, 1, 2, 3}) {
			t.Fatalf("order %v is not a permutation of all %d variants", order, n)
		}
		for pos, v := range order {
			seen[[2]int{pos, v}]++
		}
		distinct[fmt.Sprint(order)] = true
	}
	for pos := range n {
		for v := range n {
			// Expected 100 each; 50 is far outside random fluctuation.
			if c := seen[[2]int{pos, v}]; c < 50 {
				t.Errorf("variant %d at position %d only %d times in %d iterations", v, pos, c, iterations)
			}
		}
	}
	if len(distinct) != 24 {
		t.Errorf("saw %d distinct orders, want all 24", len(distinct))
	}
}

func TestRecordAbandonsAVariantThatNeverWorked(t *testing.T) {
	broken, flaky := &variantResult{}, &variantResult{}
	fail := errors.New("boom")
	for i := range abandonAfter {
		measured := i > 0 // the first run is a warm-up
		broken.record(Sample{}, fail, measured)
		if measured {
			flaky.record(Sample{}, fail, measured)
		} else {
			flaky.record(Sample{}, nil, measured)
		}
	}
	if broken.Unavailable == "" || broken.FirstError != "boom" || broken.Failures != abandonAfter-1 {
		t.Errorf("broken variant: %+v, want abandoned with warm-up failure uncounted", broken)
	}
	if flaky.Unavailable != "" || flaky.Failures != abandonAfter-1 {
		t.Errorf("variant that once succeeded: %+v, want kept", flaky)
	}
}

func TestSelectScenarios(t *testing.T) {
	all := []Scenario{{Name: "run"}, {Name: "exec"}}
	got, err := selectScenarios(all, []string{"exec"})
	if err != nil || len(got) != 1 || got[0].Name != "exec" {
		t.Errorf(`selectScenarios("exec") = %v, %v`, got, err)
	}
	if got, err := selectScenarios(all, []string{"all"}); err != nil || len(got) != 2 {
		t.Errorf(`selectScenarios("all") = %v, %v`, got, err)
	}
	if _, err := selectScenarios(all, []string{"nope"}); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestScenariosRegistered(t *testing.T) {
	got, err := selectScenarios(scenarios(), []string{"all"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range got {
		names = append(names, sc.Name)
	}
	want := []string{"run", "run-net", "net-rate", "exec", "lifecycle", "checkpoint", "restore", "migrate-downtime", "migrate-total", "proc", "proc-load", "proc-kill", "proc-run", "rules", "cri"}
	if !slices.Equal(names, want) {
		t.Errorf("all scenarios = %v, want %v", names, want)
	}
	if err := checkVariantNames([]Scenario{execLatencyScenario()}, []string{"floor"}, ""); err == nil {
		t.Error("exec scenario accepts the floor variant, which it does not have")
	}
}

func TestVariantSelection(t *testing.T) {
	scs := []Scenario{runLatencyScenario()}
	if err := checkVariantNames(scs, []string{"lkc", "crun"}, ""); err != nil {
		t.Errorf("known variants rejected: %v", err)
	}
	if err := checkVariantNames(scs, []string{"lck"}, ""); err == nil {
		t.Error("unknown variant accepted")
	}
	if err := checkVariantNames(scs, []string{"lkc-base"}, ""); err == nil {
		t.Error("lkc-base accepted without -baseline")
	}
	if err := checkVariantNames(scs, []string{"lkc", "lkc-base"}, "/tmp/lkc-main"); err != nil {
		t.Errorf("lkc-base rejected with -baseline: %v", err)
	}
	all := runLatencyScenario().Variants(&Env{})
	var names []string
	for _, v := range selectVariants(all, []string{"crun", "floor"}) {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, []string{"crun", "floor"}) {
		t.Errorf("selected %v, want [crun floor]", names)
	}
	if len(selectVariants(all, nil)) != len(all) {
		t.Error("an empty selection does not select every variant")
	}
}

// Every lifecycle ratio names variants the scenario has, so none is
// silently dropped from the report.
func TestLifecycleRatiosNameVariants(t *testing.T) {
	sc := lifecycleScenario()
	have := map[string]bool{}
	for _, v := range sc.Variants(&Env{Baseline: "/x/lkc"}) {
		have[v.Name] = true
	}
	if len(have) != 4*(1+len(lifecycleOps)) {
		t.Errorf("%d variants, want %d", len(have), 4*(1+len(lifecycleOps)))
	}
	for _, r := range sc.Ratios {
		if !have[r[0]] || !have[r[1]] {
			t.Errorf("ratio %s/%s names a variant the scenario lacks", r[0], r[1])
		}
	}
}

func TestCRIScenarioVariants(t *testing.T) {
	if tags := criBuildTags(); !slices.Equal(tags, []string{"1.6", "2.4"}) {
		t.Errorf("containerd tags %v, want [1.6 2.4]", tags)
	}
	sc := criScenario()
	names := map[string]bool{}
	for _, v := range sc.Variants(&Env{LKC: "/lkc", Baseline: "/lkc-base"}) {
		if names[v.Name] {
			t.Errorf("variant %s twice", v.Name)
		}
		names[v.Name] = true
	}
	for _, r := range sc.Ratios {
		if !names[r[0]] || !names[r[1]] {
			t.Errorf("ratio %s/%s names a variant the scenario does not have", r[0], r[1])
		}
	}
	if !names["lkc-1.6-start"] || !names["runc-2.4-teardown"] || !names["crictl-2.4"] {
		t.Errorf("variants %v lack lkc-1.6-start, runc-2.4-teardown or crictl-2.4", names)
	}
}
