# ROS 2 wheels from PyPI export `<pkg>__rosidl_generator_py` targets whose include directories point
# at the wheel builder's Python and NumPy (/opt/python/...), which makes CMake stop with
# "includes non-existent path". Point them at this machine's Python and NumPy instead.
# On a system ROS 2 install the paths exist and nothing is changed.
macro(fix_pip_rosidl_python_includes)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development NumPy)
  get_property(_mr_targets DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(_mr_target IN LISTS _mr_targets)
    if(_mr_target MATCHES "__rosidl_generator_py$")
      get_target_property(_mr_includes ${_mr_target} INTERFACE_INCLUDE_DIRECTORIES)
      set(_mr_missing FALSE)
      foreach(_mr_dir IN LISTS _mr_includes)
        if(NOT EXISTS "${_mr_dir}")
          set(_mr_missing TRUE)
        endif()
      endforeach()
      if(_mr_missing)
        set_target_properties(${_mr_target} PROPERTIES
          INTERFACE_INCLUDE_DIRECTORIES "${Python3_INCLUDE_DIRS};${Python3_NumPy_INCLUDE_DIRS}")
      endif()
    endif()
  endforeach()
endmacro()
