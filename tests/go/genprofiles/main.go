// Command genprofiles writes a small set of real Go runtime/pprof profiles
// into a directory. They serve as golden inputs for cprof's pprof-format
// tests (reading, writing and round-tripping profile.proto data).
//
// Usage:
//
//	genprofiles OUTDIR
//
// Files written (all debug=0, i.e. gzipped protobuf, unless noted):
//
//	cpu.prof           ~1.5s CPU in main.hotA (~2/3) and main.hotB (~1/3), labelled worker=a
//	heap.prof          inuse/alloc space+objects from main.allocSmall and main.allocLarge
//	allocs.prof        same data as heap.prof, sample_index defaulting to alloc_space
//	mutex.prof         contention on a sync.Mutex in main.lockContender
//	block.prof         channel blocking in main.chanReceiver
//	goroutine.prof     includes 3 goroutines parked in main.parkedWorker, labelled worker=parked
//	threadcreate.prof  thread creation profile
//	goroutine.debug1.txt  goroutine profile in legacy text form (debug=1)
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// sink keeps results alive so the compiler cannot drop the work.
var sink uint64

// retained keeps heap allocations reachable until the heap profile is written.
var retained [][]byte

// hotA and hotB each contain their own copy of the busy loop (rather than
// calling a shared helper) so that flat CPU time is attributed to them.

//go:noinline
func hotA(d time.Duration) {
	x := uint64(88172645463325252)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for i := 0; i < 50000; i++ {
			x ^= x << 13 // xorshift64: cheap, not optimisable away
			x ^= x >> 7
			x ^= x << 17
		}
	}
	sink += x
}

//go:noinline
func hotB(d time.Duration) {
	x := uint64(2463534242)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for i := 0; i < 50000; i++ {
			x ^= x << 7
			x ^= x >> 9
			x ^= x << 8
		}
	}
	sink += x
}

//go:noinline
func cpuWork() {
	// Interleave so that both functions are sampled throughout the run.
	for i := 0; i < 10; i++ {
		hotA(100 * time.Millisecond)
		hotB(50 * time.Millisecond)
	}
}

//go:noinline
func allocSmall() {
	for i := 0; i < 2000; i++ {
		retained = append(retained, make([]byte, 64))
	}
}

//go:noinline
func allocLarge() {
	for i := 0; i < 40; i++ {
		retained = append(retained, make([]byte, 16<<10))
	}
}

//go:noinline
func allocGarbage() {
	// Allocated and dropped: shows up in alloc_* but not inuse_*.
	for i := 0; i < 500; i++ {
		b := make([]byte, 128)
		sink += uint64(len(b))
	}
}

//go:noinline
func lockContender(mu *sync.Mutex, n int, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; i < n; i++ {
		mu.Lock()
		time.Sleep(200 * time.Microsecond) // hold the lock so others wait
		mu.Unlock()
	}
}

//go:noinline
func mutexWork() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go lockContender(&mu, 50, &wg)
	}
	wg.Wait()
}

//go:noinline
func chanReceiver(ch <-chan int, wg *sync.WaitGroup) {
	defer wg.Done()
	for v := range ch {
		sink += uint64(v)
	}
}

//go:noinline
func blockWork() {
	ch := make(chan int)
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go chanReceiver(ch, &wg)
	}
	for i := 0; i < 30; i++ {
		time.Sleep(time.Millisecond) // receivers block while waiting
		ch <- i
	}
	close(ch)
	wg.Wait()
}

//go:noinline
func parkedWorker(stop <-chan struct{}, ready *sync.WaitGroup) {
	ready.Done()
	<-stop
}

func write(dir, name string, fn func(f *os.File) error) {
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		fatal(err)
	}
	if err := fn(f); err != nil {
		fatal(fmt.Errorf("%s: %v", path, err))
	}
	if err := f.Close(); err != nil {
		fatal(err)
	}
}

func writeLookup(dir, file, profile string, debug int) {
	write(dir, file, func(f *os.File) error {
		p := pprof.Lookup(profile)
		if p == nil {
			return fmt.Errorf("no such profile %q", profile)
		}
		return p.WriteTo(f, debug)
	})
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "genprofiles:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genprofiles OUTDIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatal(err)
	}

	// Must be set before any allocation we want to see.
	runtime.MemProfileRate = 1
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)

	// CPU profile.
	write(dir, "cpu.prof", func(f *os.File) error {
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		pprof.Do(context.Background(), pprof.Labels("worker", "a"), func(context.Context) {
			cpuWork()
		})
		pprof.StopCPUProfile()
		return nil
	})

	// Heap / allocs.
	allocSmall()
	allocLarge()
	allocGarbage()
	runtime.GC()
	writeLookup(dir, "heap.prof", "heap", 0)
	writeLookup(dir, "allocs.prof", "allocs", 0)
	runtime.KeepAlive(retained)

	// Mutex and block profiles.
	mutexWork()
	blockWork()
	writeLookup(dir, "mutex.prof", "mutex", 0)
	writeLookup(dir, "block.prof", "block", 0)

	// Goroutine profiles with a few parked goroutines.
	stop := make(chan struct{})
	var ready sync.WaitGroup
	// Goroutines started inside pprof.Do inherit its labels, so the
	// goroutine profile carries worker=parked on these samples.
	pprof.Do(context.Background(), pprof.Labels("worker", "parked"), func(context.Context) {
		for i := 0; i < 3; i++ {
			ready.Add(1)
			go parkedWorker(stop, &ready)
		}
	})
	ready.Wait()
	runtime.Gosched()
	writeLookup(dir, "goroutine.prof", "goroutine", 0)
	writeLookup(dir, "goroutine.debug1.txt", "goroutine", 1)
	close(stop)

	writeLookup(dir, "threadcreate.prof", "threadcreate", 0)
}
