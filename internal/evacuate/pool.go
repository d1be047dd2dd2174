package evacuate

import "sync"

// each runs fn on every item, at most n at a time (n < 1 is 1), and
// returns when all are done.
func each[T any](items []T, n int, fn func(T)) {
	if n < 1 {
		n = 1
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(it)
		}()
	}
	wg.Wait()
}
