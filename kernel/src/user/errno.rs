//! Linux's error numbers (`asm-generic/errno-base.h` and `errno.h`), the
//! ones the system calls here return. A system call returns `-errno` in RAX.

/// A Linux error number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $value:expr, $meaning:expr;)*) => {
        // The table as Linux has it, whether or not a call returns each yet.
        #[allow(dead_code)]
        impl Errno {
            $(
                #[doc = $meaning]
                pub const $name: Errno = Errno($value);
            )*

            /// The symbolic name (`"EFAULT"`), or `"E?"` for a number not listed here.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($value => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory.";
    ESRCH = 3, "No such process.";
    EINTR = 4, "Interrupted system call.";
    EIO = 5, "I/O error.";
    ENXIO = 6, "No such device or address.";
    E2BIG = 7, "Argument list too long.";
    ENOEXEC = 8, "Exec format error.";
    EBADF = 9, "Bad file number.";
    ECHILD = 10, "No child processes.";
    EAGAIN = 11, "Try again.";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address.";
    EBUSY = 16, "Device or resource busy.";
    EEXIST = 17, "File exists.";
    EXDEV = 18, "Cross-device link.";
    ENODEV = 19, "No such device.";
    ENOTDIR = 20, "Not a directory.";
    EISDIR = 21, "Is a directory.";
    EINVAL = 22, "Invalid argument.";
    ENFILE = 23, "File table overflow.";
    EMFILE = 24, "Too many open files.";
    ENOTTY = 25, "Not a typewriter.";
    EFBIG = 27, "File too large.";
    ENOSPC = 28, "No space left on device.";
    ESPIPE = 29, "Illegal seek.";
    EROFS = 30, "Read-only file system.";
    EMLINK = 31, "Too many links.";
    EPIPE = 32, "Broken pipe.";
    ERANGE = 34, "Math result not representable.";
    ENAMETOOLONG = 36, "File name too long.";
    ENOSYS = 38, "Invalid system call number.";
    ENOTEMPTY = 39, "Directory not empty.";
    ELOOP = 40, "Too many symbolic links encountered.";
    EOVERFLOW = 75, "Value too large for defined data type.";
    ETIMEDOUT = 110, "Connection timed out.";
    EPROTONOSUPPORT = 93, "Protocol not supported.";
    ESOCKTNOSUPPORT = 94, "Socket type not supported.";
    EOPNOTSUPP = 95, "Operation not supported on transport endpoint.";
    EAFNOSUPPORT = 97, "Address family not supported by protocol.";
    ERESTARTSYS = 512, "Kernel-internal: restart the system call after the signal's handler if it has SA_RESTART, else EINTR (never seen by a program).";
}

impl Errno {
    /// The value a system call puts in RAX: `-errno`.
    pub const fn to_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }
}

/// What a system call returns: a value, or an error number.
pub type SysResult = Result<u64, Errno>;
