package netwatch

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the system calls back: NotifyIpInterfaceChange,
// NotifyUnicastIpAddressChange and NotifyRouteChange2 (iphlpapi.dll,
// Windows Vista and later; golang.org/x/sys/windows has all three and
// CancelMibChangeNotify2) each run a callback on a thread of the
// system's pool for every change, with the notification's type.
// mibnotify.go reduces the call to a change.
//
// The three registrations are shared by every live Watcher of the
// process: made for the first, cancelled with the last. Each callback
// made by windows.NewCallback is never freed (a process may make only a
// few thousand), so they are made once.

var (
	mibCallbacksOnce sync.Once
	mibCallbacks     [mibSources]uintptr

	// mibMu serialises registration and cancellation; the callbacks never
	// take it (CancelMibChangeNotify2 waits for callbacks in progress).
	mibMu         sync.Mutex
	mibHandles    [mibSources]windows.Handle
	mibRegistered bool // the three registrations are made
	// mibLive is what the callbacks read: the open watchers.
	mibLive atomic.Pointer[[]*winWatch]
)

// winWatch is a Watcher as the callbacks see it: notify takes mu and
// does nothing once closed, so that nothing is queued after Close.
type winWatch struct {
	mu     sync.Mutex
	w      *Watcher
	closed bool
}

func (ww *winWatch) notify() {
	ww.mu.Lock()
	if !ww.closed {
		ww.w.notify()
	}
	ww.mu.Unlock()
}

// mibCallback is the Go side of one registration's callback: the
// caller's context (nil), the row (not read) and the notification type.
func mibCallback(src mibSource) func(ctx, row, typ uintptr) uintptr {
	return func(_, _, typ uintptr) uintptr {
		if mibChange(src, uint32(typ)) == 0 {
			return 0
		}
		if live := mibLive.Load(); live != nil {
			for _, ww := range *live {
				ww.notify()
			}
		}
		return 0
	}
}

// New registers for Windows' interface, address and route change
// notifications.
func New() (*Watcher, error) {
	mibCallbacksOnce.Do(func() {
		for src := range mibSources {
			mibCallbacks[src] = windows.NewCallback(mibCallback(src))
		}
	})
	w := &Watcher{
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}), // no goroutine of ours to wait for
	}
	close(w.done)
	ww := &winWatch{w: w}
	mibMu.Lock()
	defer mibMu.Unlock()
	var live []*winWatch
	if p := mibLive.Load(); p != nil {
		live = *p
	}
	if len(live) == 0 {
		if err := mibRegister(); err != nil {
			return nil, err
		}
	}
	live = append(live[:len(live):len(live)], ww)
	mibLive.Store(&live)
	w.stop = func() error { return mibRemove(ww) }
	return w, nil
}

// mibRegister makes the three registrations, for IPv4 and IPv6 alike
// (AF_UNSPEC), without the initial notification. mibMu is held.
func mibRegister() error {
	register := [mibSources]func(family uint16, cb uintptr, ctx unsafe.Pointer, initial bool, h *windows.Handle) error{
		mibInterface: windows.NotifyIpInterfaceChange,
		mibAddress:   windows.NotifyUnicastIpAddressChange,
		mibRoute:     windows.NotifyRouteChange2,
	}
	names := [mibSources]string{"NotifyIpInterfaceChange", "NotifyUnicastIpAddressChange", "NotifyRouteChange2"}
	for src := range mibSources {
		if err := register[src](windows.AF_UNSPEC, mibCallbacks[src], nil, false, &mibHandles[src]); err != nil {
			mibCancel()
			return fmt.Errorf("netwatch: %s: %w", names[src], err)
		}
	}
	mibRegistered = true
	return nil
}

// mibCancel cancels the registrations made; when it returns no callback
// is running or will run. mibMu is held.
func mibCancel() error {
	var first error
	for src := range mibSources {
		if mibHandles[src] == 0 {
			continue
		}
		if err := windows.CancelMibChangeNotify2(mibHandles[src]); err != nil && first == nil {
			first = fmt.Errorf("netwatch: CancelMibChangeNotify2: %w", err)
		}
		mibHandles[src] = 0
	}
	mibRegistered = false
	return first
}

// mibRemove closes one watcher, and cancels the registrations if it was
// the last.
func mibRemove(ww *winWatch) error {
	ww.mu.Lock()
	ww.closed = true
	ww.mu.Unlock()
	mibMu.Lock()
	defer mibMu.Unlock()
	var live []*winWatch
	if p := mibLive.Load(); p != nil {
		for _, x := range *p {
			if x != ww {
				live = append(live, x)
			}
		}
	}
	mibLive.Store(&live)
	if len(live) == 0 {
		return mibCancel()
	}
	return nil
}
