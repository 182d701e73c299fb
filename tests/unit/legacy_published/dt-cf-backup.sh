#!/bin/bash  
# (chmouel/dt-cf-backup dt-cf-backup.sh @3aef1b8, top filled in as its README says; body abridged)
# Rackspace CloudFiles INFORMATION
export CLOUDFILES_USERNAME="myrackuser"
export CLOUDFILES_APIKEY="0123456789abcdef"

# export CLOUDFILES_AUTHURL=https://lon.auth.api.rackspacecloud.com/

export PASSPHRASE="gpg key passphrase"
GPG_KEY="1A2B3C4D"
ROOT="/home/"
DEST="cf+http://backupcontainer"
INCLIST=( "/home/*/Documents" \ 
    	  "/home/*/Projects" \
        ) 
EXCLIST=( "/home/*/Trash" \
	      "/home/*/Projects/Completed" \
	      "/**.DS_Store" "/**Icon?" "/**.AppleDouble" \ 
           ) 
STATIC_OPTIONS="--full-if-older-than 14D"
CLEAN_UP_TYPE="remove-all-but-n-full"
CLEAN_UP_VARIABLE="2"
LOGDIR="/tmp/legacy-probe/logs/dtcf/"
LOG_FILE="duplicity-`date +%Y-%m-%d-%M`.txt"
LOG_FILE_OWNER="foobar_user_name:foobar_user_name"
VERBOSITY="-v3"
#ECHO=$(which echo)

if [[ -e ~/.dt-cf-backup.conf ]];then
    source ~/.dt-cf-backup.conf
fi

##############################################################
# Script Happens Below This Line - Shouldn't Require Editing # 
##############################################################
LOGFILE="${LOGDIR}${LOG_FILE}"
DUPLICITY="$(which duplicity)"
if [ ! -x "$DUPLICITY" ]; then
  echo "ERROR: duplicity not installed, that's gotta happen first!" >&2
  exit 1
fi
if ! python -c 'import cloudfiles' 2>/dev/null >/dev/null;then
  echo "ERROR: python-cloudfiles library needs to be install, that's gotta happen first!" >&2
  exit 1
fi
if [ ! -d ${LOGDIR} ]; then
  echo "Attempting to create log directory ${LOGDIR} ..."
  mkdir -p ${LOGDIR}
fi
ulimit -n 1024
echo -e "--------    START DT-CF-BACKUP SCRIPT    --------\n" >> ${LOGFILE}
if [ "$1" = "--backup" ]; then
  echo backup
else
  echo -e "[Only show `basename $0` usage options]\n" >> ${LOGFILE}
  echo "  USAGE: ..."
fi
unset CLOUDFILES_USERNAME
unset CLOUDFILES_APIKEY
unset PASSPHRASE
